/* Executes INT3. On hardware virtualization the runtime's exception handler reports
 * vector 3 and exits with EXIT_EXCEPTION; under PVM KVM cannot emulate it and the VM
 * must end with reason KVM_ERROR and a clear detail, never hang. */
#include "guest.h"

GUEST_TEST(int3, "int3") {
    guest_boot_done();
    serial_puts("executing int3\n");
    __asm__ volatile("int3");
    guest_fail("int3 returned");
    return EXIT_FAIL;
}
