/* Runtime API for vmctl test guests. See ../ABI.md for the contract with the VMM. */
#ifndef VMCTL_GUEST_H
#define VMCTL_GUEST_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef long long i64;
typedef unsigned long usize;

#define PORT_COM1 0x3f8
#define PORT_I8042_DATA 0x60
#define PORT_I8042_CMD 0x64
#define PORT_BOOT_DONE 0x600
#define PORT_EXIT 0x604

#define EXIT_PASS 0
#define EXIT_FAIL 1
#define EXIT_UNKNOWN_TEST 2
#define EXIT_EXCEPTION 3

static inline void outb(u16 port, u8 v) { __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(port)); }
static inline void outl(u16 port, u32 v) { __asm__ volatile("outl %0, %1" ::"a"(v), "Nd"(port)); }
static inline u8 inb(u16 port) { u8 v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline u32 inl(u16 port) { u32 v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port)); return v; }

static inline u32 mmio_read32(u64 addr) { return *(volatile u32 *)addr; }
static inline void mmio_write32(u64 addr, u32 v) { *(volatile u32 *)addr = v; }
static inline u8 mmio_read8(u64 addr) { return *(volatile u8 *)addr; }
static inline void mmio_write8(u64 addr, u8 v) { *(volatile u8 *)addr = v; }
static inline void barrier(void) { __asm__ volatile("mfence" ::: "memory"); }

/* The zero page the VMM passed in RSI. */
extern const u8 *guest_boot_params;

/* Serial console (COM1, polled). */
void serial_putc(char c);
void serial_puts(const char *s);
void serial_put_u64(u64 v);          /* decimal */
void serial_put_hex(u64 v);          /* 0x-prefixed hex */
void serial_kv_u64(const char *key, u64 v);  /* "key=<decimal>\n" */
void serial_kv_hex(const char *key, u64 v);  /* "key=0x<hex>\n" */
int serial_getc_nonblock(void);      /* -1 when nothing is waiting */

/* Command line. */
const char *cmdline(void);
/* Copies the value of `key=` (word-delimited) into buf; returns length or -1. */
int cmdline_get(const char *key, char *buf, int buflen);
/* The value of `key=` as a number (decimal or 0x-hex); `dflt` when absent or malformed. */
u64 cmdline_u64(const char *key, u64 dflt);
/* Finds the n-th `virtio_mmio.device=4K@ADDR:IRQ`; returns 0 on success. */
int cmdline_virtio_mmio(int n, u64 *addr, u32 *irq);

/* Ending the test. */
__attribute__((noreturn)) void guest_exit(u32 code);
__attribute__((noreturn)) void guest_fail(const char *why);    /* prints FAIL line, exits 1 */
void guest_boot_done(void);

/* Small helpers (no libc). */
void *memset(void *d, int c, usize n);
void *memcpy(void *d, const void *s, usize n);
int memcmp(const void *a, const void *b, usize n);
usize strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, usize n);

/* Interrupts: install a handler for a vector (32..255) and enable/disable them. The
 * runtime sets up the IDT; exceptions (0..31) print and exit with EXIT_EXCEPTION. */
typedef void (*irq_handler_fn)(u8 vector);
void idt_set_handler(u8 vector, irq_handler_fn fn);
static inline void irq_enable(void) { __asm__ volatile("sti" ::: "memory"); }
static inline void irq_disable(void) { __asm__ volatile("cli" ::: "memory"); }

/* Test registration: each test is a function placed in the .guest_tests section. */
struct guest_test {
    const char *name;
    int (*run)(void); /* returns an exit code; guest_fail() may end it early */
};
#define GUEST_TEST(fn_name, test_name)                                              \
    static int fn_name(void);                                                       \
    static const struct guest_test __guest_test_##fn_name                            \
        __attribute__((used, section(".guest_tests"), aligned(8))) = {test_name, fn_name}; \
    static int fn_name(void)

#endif
