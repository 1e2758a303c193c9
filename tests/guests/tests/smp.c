/* Two (or more) vCPUs in guest code, woken the way Linux wakes them: the BSP counts
 * processors in the MP table, copies a real-mode trampoline below 1 MiB and sends
 * INIT-SIPI-SIPI through its local APIC; each AP goes real mode -> long mode, takes a
 * stack and increments a shared counter. */
#include "guest.h"

#define LAPIC_BASE 0xfee00000ULL
#define LAPIC_ID 0x20
#define LAPIC_SVR 0xf0
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310
#define ICR_INIT 0x00000500
#define ICR_STARTUP 0x00000600
#define ICR_LEVEL_ASSERT 0x00004000
#define ICR_LEVEL_TRIGGER 0x00008000
#define ICR_ALL_BUT_SELF 0x000c0000
#define ICR_BUSY 0x00001000

/* Where the trampoline runs: page 1, SIPI vector 0x01. */
#define TRAMPOLINE_ADDR 0x1000
#define MAX_APS 31
#define AP_STACK_SIZE 4096

extern const u8 ap_trampoline_start[], ap_trampoline_end[], ap_trampoline_cr3[];

volatile u32 ap_started;
volatile u32 ap_next_index;
u8 ap_stacks[MAX_APS][AP_STACK_SIZE] __attribute__((aligned(16)));
struct {
    u16 limit;
    u64 base;
} __attribute__((packed)) bsp_idtr;

/* Called on each AP in long mode with its own stack. */
__attribute__((noreturn, used)) void ap_main(void) {
    __asm__ volatile("lidt %0" ::"m"(bsp_idtr));
    __atomic_fetch_add(&ap_started, 1, __ATOMIC_SEQ_CST);
    for (;;) __asm__ volatile("cli; hlt");
}

/* The trampoline, assembled for the address it is copied to. */
__asm__(
    ".section .rodata\n"
    ".globl ap_trampoline_start, ap_trampoline_end, ap_trampoline_cr3\n"
    ".code16\n"
    "ap_trampoline_start:\n"
    "  cli\n"
    "  xorw %ax, %ax\n"
    "  movw %ax, %ds\n"
    "  lgdtl (ap_gdtr - ap_trampoline_start + 0x1000)\n"
    "  movl %cr4, %eax\n"
    "  orl $0x20, %eax\n" /* PAE */
    "  movl %eax, %cr4\n"
    "  movl (ap_trampoline_cr3 - ap_trampoline_start + 0x1000), %eax\n"
    "  movl %eax, %cr3\n"
    "  movl $0xc0000080, %ecx\n" /* EFER */
    "  rdmsr\n"
    "  orl $0x100, %eax\n" /* LME */
    "  wrmsr\n"
    "  movl %cr0, %eax\n"
    "  orl $0x80000001, %eax\n" /* PG | PE */
    "  movl %eax, %cr0\n"
    "  ljmpl $0x08, $(ap_long - ap_trampoline_start + 0x1000)\n"
    ".code64\n"
    "ap_long:\n"
    "  movw $0x10, %ax\n"
    "  movw %ax, %ds\n"
    "  movw %ax, %es\n"
    "  movw %ax, %ss\n"
    "  movl $1, %eax\n"
    "  lock xaddl %eax, ap_next_index\n"
    "  incl %eax\n"
    "  shlq $12, %rax\n"
    "  movabsq $ap_stacks, %rsp\n"
    "  addq %rax, %rsp\n"
    "  movabsq $ap_main, %rax\n"
    "  callq *%rax\n"
    ".p2align 3\n"
    "ap_gdt:\n"
    "  .quad 0\n"
    "  .quad 0x00af9a000000ffff\n" /* 0x08: 64-bit code */
    "  .quad 0x00cf92000000ffff\n" /* 0x10: data */
    "ap_gdtr:\n"
    "  .word 23\n"
    "  .long ap_gdt - ap_trampoline_start + 0x1000\n"
    "ap_trampoline_cr3:\n"
    "  .long 0\n"
    "ap_trampoline_end:\n"
    ".text\n");

/* Processors listed in the MP table (Linux's way without ACPI). */
static int mp_cpu_count(void) {
    const u8 *ranges[][2] = {{(const u8 *)0x9fc00, (const u8 *)0xa0000},
                             {(const u8 *)0xf0000, (const u8 *)0x100000}};
    for (int r = 0; r < 2; r++) {
        for (const u8 *p = ranges[r][0]; p < ranges[r][1]; p += 16) {
            if (memcmp(p, "_MP_", 4) != 0) continue;
            u8 sum = 0;
            for (int i = 0; i < 16; i++) sum += p[i];
            if (sum != 0) continue;
            const u8 *table = (const u8 *)(usize)(*(const u32 *)(p + 4));
            if (memcmp(table, "PCMP", 4) != 0) return -1;
            u16 len = *(const u16 *)(table + 4);
            u16 count = *(const u16 *)(table + 34);
            sum = 0;
            for (int i = 0; i < len; i++) sum += table[i];
            if (sum != 0) return -1;
            const u8 *e = table + 44;
            int cpus = 0;
            for (int i = 0; i < count; i++) {
                if (e[0] == 0) {
                    if (e[3] & 1) cpus++;
                    e += 20;
                } else {
                    e += 8;
                }
            }
            return cpus;
        }
    }
    return -1;
}

static void lapic_write(u32 reg, u32 v) { mmio_write32(LAPIC_BASE + reg, v); }
static u32 lapic_read(u32 reg) { return mmio_read32(LAPIC_BASE + reg); }

static void send_ipi(u32 icr) {
    lapic_write(LAPIC_ICR_HI, 0);
    lapic_write(LAPIC_ICR_LO, icr);
    for (int i = 0; i < 1000 && (lapic_read(LAPIC_ICR_LO) & ICR_BUSY); i++) {
    }
}

static void delay(int n) {
    for (volatile int i = 0; i < n; i++) {
    }
}

GUEST_TEST(smp, "smp") {
    guest_boot_done();
    int cpus = mp_cpu_count();
    serial_kv_u64("mp_cpus", (u64)cpus);
    if (cpus < 1) guest_fail("no valid MP table");
    serial_kv_u64("bsp_apic_id", lapic_read(LAPIC_ID) >> 24);
    if (cpus > MAX_APS + 1) guest_fail("too many CPUs for this test");

    usize len = (usize)(ap_trampoline_end - ap_trampoline_start);
    memcpy((void *)TRAMPOLINE_ADDR, ap_trampoline_start, len);
    u64 cr3;
    __asm__ volatile("mov %%cr3, %0" : "=r"(cr3));
    *(volatile u32 *)(usize)(TRAMPOLINE_ADDR + (ap_trampoline_cr3 - ap_trampoline_start)) = (u32)cr3;
    __asm__ volatile("sidt %0" : "=m"(bsp_idtr));

    lapic_write(LAPIC_SVR, 0x1ff);
    send_ipi(ICR_ALL_BUT_SELF | ICR_LEVEL_TRIGGER | ICR_LEVEL_ASSERT | ICR_INIT);
    delay(100);
    send_ipi(ICR_ALL_BUT_SELF | ICR_LEVEL_TRIGGER | ICR_INIT); /* de-assert */
    delay(100);
    for (int sipi = 0; sipi < 2; sipi++) {
        send_ipi(ICR_ALL_BUT_SELF | ICR_STARTUP | (TRAMPOLINE_ADDR >> 12));
        delay(100);
    }
    for (int i = 0; i < 200000 && ap_started < (u32)(cpus - 1); i++) __asm__ volatile("pause");
    serial_kv_u64("aps_started", ap_started);
    serial_kv_u64("cpus_in_guest_code", ap_started + 1);
    if (ap_started != (u32)(cpus - 1)) guest_fail("not every AP reached guest code");
    return EXIT_PASS;
}
