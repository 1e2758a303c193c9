/* The smallest guest: prints over the serial console and signals boot done. */
#include "guest.h"

GUEST_TEST(hello, "hello") {
    guest_boot_done();
    serial_puts("hello from the vmctl test guest\n");
    return EXIT_PASS;
}

/* Reads one line from the serial console (polled) and prints it back as got=LINE. */
GUEST_TEST(echo, "echo") {
    guest_boot_done();
    serial_puts("ready\n");
    char line[64];
    int n = 0;
    for (;;) {
        int c = serial_getc_nonblock();
        if (c < 0) continue;
        if (c == '\n' || n == (int)sizeof(line) - 1) break;
        line[n++] = (char)c;
    }
    line[n] = 0;
    serial_puts("got=");
    serial_puts(line);
    serial_putc('\n');
    return EXIT_PASS;
}
