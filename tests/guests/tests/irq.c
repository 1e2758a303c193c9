/* An interrupt through the in-kernel irqchip: COM1's "transmitter empty" interrupt
 * (GSI 4, raised by the VMM through an irqfd) routed by the IOAPIC to vector 0x40 on
 * this CPU's local APIC, delivered to an IDT handler. */
#include "guest.h"

#define LAPIC_BASE 0xfee00000ULL
#define LAPIC_SVR 0xf0
#define LAPIC_EOI 0xb0
#define IOAPIC_BASE 0xfec00000ULL
#define IOAPIC_REGSEL 0x00
#define IOAPIC_WIN 0x10
#define IOAPIC_REDTBL(pin) (0x10 + 2 * (pin))

#define UART_IER 1
#define UART_IIR 2
#define UART_MCR 4
#define IER_THRI 0x02
#define MCR_OUT2 0x08

#define IRQ_VECTOR 0x40
#define COM1_GSI 4

static volatile u32 irq_count;
static volatile u8 last_iir;

static void ioapic_write(u32 reg, u32 v) {
    mmio_write32(IOAPIC_BASE + IOAPIC_REGSEL, reg);
    mmio_write32(IOAPIC_BASE + IOAPIC_WIN, v);
}

static void on_serial_irq(u8 vector) {
    (void)vector;
    last_iir = inb(PORT_COM1 + UART_IIR); /* reading IIR acknowledges THRE */
    outb(PORT_COM1 + UART_IER, 0);        /* one is enough */
    irq_count++;
    mmio_write32(LAPIC_BASE + LAPIC_EOI, 0);
}

GUEST_TEST(irq_serial, "irq_serial") {
    guest_boot_done();
    /* Mask the 8259s: the IOAPIC delivers. */
    outb(0x21, 0xff);
    outb(0xa1, 0xff);
    /* Software-enable the local APIC, spurious vector 0xff. */
    mmio_write32(LAPIC_BASE + LAPIC_SVR, 0x1ff);
    idt_set_handler(IRQ_VECTOR, on_serial_irq);
    /* Pin 4: fixed delivery, physical destination APIC 0, edge, active high, unmasked. */
    ioapic_write(IOAPIC_REDTBL(COM1_GSI) + 1, 0);
    ioapic_write(IOAPIC_REDTBL(COM1_GSI), IRQ_VECTOR);

    outb(PORT_COM1 + UART_MCR, MCR_OUT2);
    irq_enable();
    outb(PORT_COM1 + UART_IER, IER_THRI);
    for (int i = 0; i < 20000 && irq_count == 0; i++) __asm__ volatile("pause");
    irq_disable();

    serial_kv_u64("irq_count", irq_count);
    serial_kv_hex("irq_vector", IRQ_VECTOR);
    serial_kv_hex("iir", last_iir);
    if (irq_count == 0) guest_fail("no interrupt arrived on vector 0x40");
    return EXIT_PASS;
}
