/* The kernel command line, read from the zero page as Linux does. */
#include "guest.h"

#define BP_CMD_LINE_PTR 0x228
#define BP_CMDLINE_SIZE 0x238

const u8 *guest_boot_params;

const char *cmdline(void) {
    if (!guest_boot_params) return "";
    u32 ptr = *(const u32 *)(guest_boot_params + BP_CMD_LINE_PTR);
    return ptr ? (const char *)(usize)ptr : "";
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n'; }

int cmdline_get(const char *key, char *buf, int buflen) {
    const char *s = cmdline();
    usize klen = strlen(key);
    while (*s) {
        while (is_space(*s)) s++;
        const char *word = s;
        while (*s && !is_space(*s)) s++;
        usize wlen = (usize)(s - word);
        if (wlen > klen && strncmp(word, key, klen) == 0 && word[klen] == '=') {
            const char *v = word + klen + 1;
            int vlen = (int)(wlen - klen - 1);
            if (buflen <= 0) return vlen;
            int n = vlen < buflen - 1 ? vlen : buflen - 1;
            memcpy(buf, v, (usize)n);
            buf[n] = 0;
            return vlen;
        }
    }
    return -1;
}

static int parse_num(const char **ps, u64 *out) {
    const char *s = *ps;
    u64 v = 0;
    int base = 10, digits = 0;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s += 2;
    }
    for (;; s++) {
        int d;
        if (*s >= '0' && *s <= '9') d = *s - '0';
        else if (base == 16 && *s >= 'a' && *s <= 'f') d = *s - 'a' + 10;
        else if (base == 16 && *s >= 'A' && *s <= 'F') d = *s - 'A' + 10;
        else break;
        v = v * (u64)base + (u64)d;
        digits++;
    }
    *ps = s;
    *out = v;
    return digits ? 0 : -1;
}

int cmdline_virtio_mmio(int n, u64 *addr, u32 *irq) {
    static const char key[] = "virtio_mmio.device=";
    const usize klen = sizeof(key) - 1;
    const char *s = cmdline();
    int seen = 0;
    while (*s) {
        while (is_space(*s)) s++;
        const char *word = s;
        while (*s && !is_space(*s)) s++;
        if ((usize)(s - word) <= klen || strncmp(word, key, klen) != 0) continue;
        if (seen++ != n) continue;
        /* SIZE@ADDR:IRQ, SIZE with an optional K/M suffix. */
        const char *p = word + klen;
        u64 size, a, i;
        if (parse_num(&p, &size)) return -1;
        if (*p == 'K' || *p == 'k' || *p == 'M' || *p == 'm') p++;
        if (*p++ != '@') return -1;
        if (parse_num(&p, &a)) return -1;
        if (*p++ != ':') return -1;
        if (parse_num(&p, &i)) return -1;
        *addr = a;
        *irq = (u32)i;
        return 0;
    }
    return -1;
}

/* Parses decimal or 0x-hex; returns `dflt` when the key is absent or malformed. */
u64 cmdline_u64(const char *key, u64 dflt) {
    char buf[32];
    int n = cmdline_get(key, buf, (int)sizeof(buf));
    if (n <= 0)
        return dflt;
    u64 v = 0;
    int i = 0, base = 10;
    if (n > 2 && buf[0] == '0' && (buf[1] == 'x' || buf[1] == 'X')) {
        base = 16;
        i = 2;
    }
    for (; i < n; i++) {
        char c = buf[i];
        u64 digit;
        if (c >= '0' && c <= '9')
            digit = (u64)(c - '0');
        else if (base == 16 && c >= 'a' && c <= 'f')
            digit = (u64)(c - 'a' + 10);
        else if (base == 16 && c >= 'A' && c <= 'F')
            digit = (u64)(c - 'A' + 10);
        else
            return dflt;
        v = v * (u64)base + digit;
    }
    return v;
}
