/* The i8042: reset line and Ctrl-Alt-Del. */
#include "guest.h"

#define I8042_STATUS_OUTPUT_FULL 0x01
#define I8042_CMD_RESET_CPU 0xfe

/* Pulses the reset line, as Linux's reboot=k does. The VM must end with reason reset. */
GUEST_TEST(reset, "reset") {
    guest_boot_done();
    outb(PORT_I8042_CMD, I8042_CMD_RESET_CPU);
    for (volatile int i = 0; i < 100000; i++) {
    }
    guest_fail("still running after the i8042 reset command");
    return EXIT_FAIL;
}

/* Waits for Ctrl-Alt-Del (set-2 scancodes E0 14 11 E0 71: the Delete make code ends
 * it), then resets the machine the way Linux does when init asks for a reboot. */
GUEST_TEST(ctrl_alt_del, "ctrl_alt_del") {
    guest_boot_done();
    serial_puts("waiting for ctrl-alt-del\n");
    u8 prev = 0;
    for (;;) {
        if (!(inb(PORT_I8042_CMD) & I8042_STATUS_OUTPUT_FULL)) continue;
        u8 b = inb(PORT_I8042_DATA);
        if (prev == 0xe0 && b == 0x71) break;
        prev = b;
    }
    serial_puts("ctrl-alt-del received: resetting\n");
    outb(PORT_I8042_CMD, I8042_CMD_RESET_CPU);
    for (;;) __asm__ volatile("cli; hlt");
    return EXIT_FAIL;
}
