/* The first 0x200 bytes of the bzImage's protected-mode image (see ../ABI.md, "bzImage").
 *
 * Linked only into the bzImage variant of the guest, in front of runtime/entry.S's
 * .text.entry, so _start (the 64-bit entry) lands at load address + 0x200 as the Linux
 * 64-bit boot protocol requires. Offset 0 is the 32-bit entry (code32_start): the test
 * guest does not support it, so it says so on COM1 and exits with code 3. */

    .section .text.head32, "ax"
    .code32
    .globl startup_32
startup_32:
    cli
    cld
    movl $msg32, %esi
1:  lodsb
    testb %al, %al
    jz 2f
    movw $0x3f8, %dx
    outb %al, %dx
    jmp 1b
2:  movl $3, %eax               /* EXIT_EXCEPTION */
    movw $0x604, %dx
    outl %eax, %dx
3:  hlt
    jmp 3b
msg32:
    .asciz "vmctl-guest: 32-bit entry is not supported; enter at +0x200 in 64-bit mode\n"
    .org startup_32 + 0x200, 0xcc   /* the 64-bit entry (_start) follows at +0x200 */
    .code64

    .section .note.GNU-stack, "", @progbits
