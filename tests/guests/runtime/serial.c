/* Polled 8250 UART on COM1: wait for the transmit holding register to empty, write. */
#include "guest.h"

#define UART_THR 0
#define UART_IER 1
#define UART_LSR 5
#define LSR_DATA_READY 0x01
#define LSR_THR_EMPTY 0x20

void serial_putc(char c) {
    /* Bounded: a broken UART must not hang the test forever. */
    for (int i = 0; i < 100000 && !(inb(PORT_COM1 + UART_LSR) & LSR_THR_EMPTY); i++) {
    }
    outb(PORT_COM1 + UART_THR, (u8)c);
}

void serial_puts(const char *s) {
    while (*s) serial_putc(*s++);
}

void serial_put_u64(u64 v) {
    char buf[21];
    int i = 20;
    buf[i] = 0;
    do {
        buf[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    serial_puts(&buf[i]);
}

void serial_put_hex(u64 v) {
    char buf[19];
    int i = 18;
    buf[i] = 0;
    do {
        buf[--i] = "0123456789abcdef"[v & 0xf];
        v >>= 4;
    } while (v);
    buf[--i] = 'x';
    buf[--i] = '0';
    serial_puts(&buf[i]);
}

void serial_kv_u64(const char *key, u64 v) {
    serial_puts(key);
    serial_putc('=');
    serial_put_u64(v);
    serial_putc('\n');
}

void serial_kv_hex(const char *key, u64 v) {
    serial_puts(key);
    serial_putc('=');
    serial_put_hex(v);
    serial_putc('\n');
}

int serial_getc_nonblock(void) {
    if (!(inb(PORT_COM1 + UART_LSR) & LSR_DATA_READY)) return -1;
    return inb(PORT_COM1 + UART_THR);
}
