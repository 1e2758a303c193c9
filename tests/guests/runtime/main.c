/* Runtime core: the IDT, exception reporting, exit and the test dispatcher. */
#include "guest.h"

struct isr_frame {
    u64 r11, r10, r9, r8, rdi, rsi, rdx, rcx, rax, rbx;
    u64 vector, error;
    u64 rip, cs, rflags, rsp, ss;
};

struct idt_entry {
    u16 offset_lo;
    u16 selector;
    u8 ist;
    u8 type_attr;
    u16 offset_mid;
    u32 offset_hi;
    u32 zero;
} __attribute__((packed));

extern const u64 isr_stub_table[256];
extern const struct guest_test __guest_tests_start[], __guest_tests_end[];

static struct idt_entry idt[256] __attribute__((aligned(16)));
static irq_handler_fn handlers[256];

void idt_init(void) {
    u16 cs;
    __asm__ volatile("mov %%cs, %0" : "=r"(cs));
    for (int v = 0; v < 256; v++) {
        u64 a = isr_stub_table[v];
        idt[v].offset_lo = (u16)a;
        idt[v].selector = cs;
        idt[v].ist = 0;
        idt[v].type_attr = 0x8e; /* present, DPL 0, 64-bit interrupt gate */
        idt[v].offset_mid = (u16)(a >> 16);
        idt[v].offset_hi = (u32)(a >> 32);
        idt[v].zero = 0;
    }
    struct {
        u16 limit;
        u64 base;
    } __attribute__((packed)) idtr = {sizeof(idt) - 1, (u64)(usize)idt};
    __asm__ volatile("lidt %0" ::"m"(idtr));
}

void idt_set_handler(u8 vector, irq_handler_fn fn) {
    handlers[vector] = fn;
}

void isr_dispatch(struct isr_frame *f) {
    u8 v = (u8)f->vector;
    if (v >= 32 && handlers[v]) {
        handlers[v](v);
        return;
    }
    serial_puts(v < 32 ? "vmctl-guest: exception vector=" : "vmctl-guest: unexpected interrupt vector=");
    serial_put_u64(v);
    serial_puts(" error=");
    serial_put_hex(f->error);
    serial_puts(" rip=");
    serial_put_hex(f->rip);
    if (v == 14) {
        u64 cr2;
        __asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
        serial_puts(" cr2=");
        serial_put_hex(cr2);
    }
    serial_putc('\n');
    guest_exit(EXIT_EXCEPTION);
}

void guest_exit(u32 code) {
    outl(PORT_EXIT, code);
    for (;;) __asm__ volatile("cli; hlt");
}

void guest_boot_done(void) { outb(PORT_BOOT_DONE, 1); }

static const char *current_test = "?";

void guest_fail(const char *why) {
    serial_puts("vmctl-guest: ");
    serial_puts(current_test);
    serial_puts(" FAIL: ");
    serial_puts(why);
    serial_putc('\n');
    guest_exit(EXIT_FAIL);
}

void guest_main(void) {
    static char name[64];
    if (cmdline_get("vmctl.test", name, sizeof(name)) < 0) {
        serial_puts("vmctl-guest: no vmctl.test=NAME on the command line\n");
        guest_exit(EXIT_UNKNOWN_TEST);
    }
    for (const struct guest_test *t = __guest_tests_start; t < __guest_tests_end; t++) {
        if (strcmp(t->name, name) != 0) continue;
        current_test = t->name;
        serial_puts("vmctl-guest: ");
        serial_puts(t->name);
        serial_puts(" start\n");
        int rc = t->run();
        serial_puts("vmctl-guest: ");
        serial_puts(t->name);
        if (rc == EXIT_PASS) {
            serial_puts(" PASS\n");
        } else {
            serial_puts(" FAIL: exit code ");
            serial_put_u64((u64)(u32)rc);
            serial_putc('\n');
        }
        guest_exit((u32)rc);
    }
    serial_puts("vmctl-guest: unknown test ");
    serial_puts(name);
    serial_putc('\n');
    guest_exit(EXIT_UNKNOWN_TEST);
}
