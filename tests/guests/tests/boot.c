/* Boot protocol checks: the zero page, its e820 map and the command line, as the VMM
 * passes them (see ../ABI.md, "Entry"); plus the exit-code and boot-done ports. */
#include "guest.h"

#define BP_E820_ENTRIES 0x1e8
#define BP_BOOT_FLAG 0x1fe
#define BP_HEADER 0x202
#define BP_VERSION 0x206
#define BP_TYPE_OF_LOADER 0x210
#define BP_LOADFLAGS 0x211
#define BP_CODE32_START 0x214
#define BP_CMD_LINE_PTR 0x228
#define BP_KERNEL_ALIGNMENT 0x230
#define BP_XLOADFLAGS 0x236
#define BP_PREF_ADDRESS 0x258
#define BP_INIT_SIZE 0x260
#define BP_CMDLINE_SIZE 0x238
#define BP_E820_TABLE 0x2d0
#define E820_RAM 1

struct e820_entry {
    u64 addr;
    u64 size;
    u32 type;
} __attribute__((packed));

GUEST_TEST(boot_params, "boot_params") {
    const u8 *bp = guest_boot_params;
    if (!bp) guest_fail("RSI (boot_params) was 0");
    serial_kv_hex("boot_params", (u64)(usize)bp);
    if (*(const u16 *)(bp + BP_BOOT_FLAG) != 0xaa55) guest_fail("boot_flag is not 0xaa55");
    if (*(const u32 *)(bp + BP_HEADER) != 0x53726448) guest_fail("header is not HdrS");
    serial_puts("hdr_header=");
    for (int i = 0; i < 4; i++) serial_putc((char)bp[BP_HEADER + i]);
    serial_putc('\n');
    /* Setup-header fields a bzImage carries (an ELF boot gets a minimal header: 0s). */
    serial_kv_hex("hdr_version", *(const u16 *)(bp + BP_VERSION));
    serial_kv_hex("hdr_type_of_loader", bp[BP_TYPE_OF_LOADER]);
    serial_kv_hex("hdr_loadflags", bp[BP_LOADFLAGS]);
    serial_kv_hex("hdr_code32_start", *(const u32 *)(bp + BP_CODE32_START));
    serial_kv_hex("hdr_kernel_alignment", *(const u32 *)(bp + BP_KERNEL_ALIGNMENT));
    serial_kv_hex("hdr_xloadflags", *(const u16 *)(bp + BP_XLOADFLAGS));
    serial_kv_hex("hdr_pref_address", *(const u64 *)(bp + BP_PREF_ADDRESS));
    serial_kv_hex("hdr_init_size", *(const u32 *)(bp + BP_INIT_SIZE));
    /* Where the VMM entered us: the ELF's e_entry, or a bzImage's load address + 0x200. */
    extern char _start[];
    serial_kv_hex("entry", (u64)(usize)_start);

    u8 n = bp[BP_E820_ENTRIES];
    if (n == 0 || n > 128) guest_fail("no e820 entries");
    serial_kv_u64("e820_entries", n);
    const struct e820_entry *e = (const struct e820_entry *)(bp + BP_E820_TABLE);
    u64 ram = 0, top = 0;
    for (int i = 0; i < n; i++) {
        if (e[i].type != E820_RAM) continue;
        ram += e[i].size;
        if (e[i].addr + e[i].size > top) top = e[i].addr + e[i].size;
    }
    serial_kv_u64("e820_ram_bytes", ram);
    serial_kv_hex("e820_ram_top", top);
    /* The kernel image itself must be inside RAM the e820 map reports. */
    if ((u64)(usize)_start < 0x100000 || (u64)(usize)_start >= top) guest_fail("kernel outside e820 RAM");

    u32 ptr = *(const u32 *)(bp + BP_CMD_LINE_PTR);
    u32 size = *(const u32 *)(bp + BP_CMDLINE_SIZE);
    serial_kv_hex("cmd_line_ptr", ptr);
    serial_kv_u64("cmdline_size", size);
    if (strlen(cmdline()) != size) guest_fail("cmdline_size does not match the string");
    serial_puts("cmdline=");
    serial_puts(cmdline());
    serial_putc('\n');

    /* Writable and readable low and high memory, a few bytes each. */
    volatile u32 *probe = (volatile u32 *)(usize)(top - 4096);
    *probe = 0x5a5aa5a5;
    if (*probe != 0x5a5aa5a5) guest_fail("top of RAM is not writable");

    guest_boot_done();
    return EXIT_PASS;
}

/* Exits with the code given as vmctl.exit=N (decimal), after signalling boot done. */
GUEST_TEST(exit_code, "exit_code") {
    char buf[16];
    if (cmdline_get("vmctl.exit", buf, sizeof(buf)) < 0) guest_fail("no vmctl.exit=N on the command line");
    u32 code = 0;
    for (char *p = buf; *p; p++) {
        if (*p < '0' || *p > '9') guest_fail("vmctl.exit is not a decimal number");
        code = code * 10 + (u32)(*p - '0');
    }
    serial_kv_u64("exit", code);
    guest_boot_done();
    guest_exit(code);
}

/* Stops forever without exiting: HLT with interrupts off blocks inside KVM, so only
 * the VMM (Shutdown, SIGTERM) ends this VM. */
GUEST_TEST(idle, "idle") {
    guest_boot_done();
    serial_puts("idle: halting\n");
    for (;;) __asm__ volatile("cli; hlt");
    return EXIT_FAIL;
}

/* Prints a tick every so often forever: the pause/resume test watches the ticks stop
 * and start again. */
GUEST_TEST(ticker, "ticker") {
    guest_boot_done();
    for (u64 tick = 0;; tick++) {
        serial_kv_u64("tick", tick);
        for (volatile int i = 0; i < 2000; i++) {
        }
    }
    return EXIT_FAIL;
}
