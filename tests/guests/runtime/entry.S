/* Entry stub and interrupt stubs of the vmctl test-guest runtime.
 *
 * The VMM enters _start in 64-bit long mode, paging on, interrupts off, with the
 * zero page (struct boot_params) in RSI. We keep RSI, switch to our own stack, load
 * our IDT and call guest_main(), which never returns. */

    .section .text.entry, "ax"
    .code64
    .globl _start
_start:
    cli
    cld
    movq %rsi, guest_boot_params(%rip)
    leaq boot_stack_top(%rip), %rsp
    xorl %ebp, %ebp
    call idt_init
    call guest_main
1:  cli
    hlt
    jmp 1b

/* One stub per vector. Vectors that push an error code (8, 10-14, 17, 21, 29, 30)
 * leave it; the others push 0, so the frame is the same for every vector. */
    .text
    .macro ISR_STUB vec
    .p2align 4
isr_stub_\vec:
    .if (\vec == 8) || ((\vec >= 10) && (\vec <= 14)) || (\vec == 17) || (\vec == 21) || (\vec == 29) || (\vec == 30)
    .else
    pushq $0
    .endif
    pushq $\vec
    jmp isr_common
    .endm

    .altmacro
    .set vec, 0
    .rept 256
    ISR_STUB %vec
    .set vec, vec + 1
    .endr

/* Frame on entry: vector, error code, RIP, CS, RFLAGS, RSP, SS. RBX is callee-saved
 * in C but we use it to restore the unaligned stack, so it is saved too. */
isr_common:
    pushq %rbx
    pushq %rax
    pushq %rcx
    pushq %rdx
    pushq %rsi
    pushq %rdi
    pushq %r8
    pushq %r9
    pushq %r10
    pushq %r11
    movq %rsp, %rdi          /* struct isr_frame * */
    movq %rsp, %rbx
    andq $-16, %rsp          /* SysV alignment for the C handler */
    pushq %rbx
    pushq %rbx
    call isr_dispatch
    popq %rbx
    movq %rbx, %rsp
    popq %r11
    popq %r10
    popq %r9
    popq %r8
    popq %rdi
    popq %rsi
    popq %rdx
    popq %rcx
    popq %rax
    popq %rbx
    addq $16, %rsp           /* vector and error code */
    iretq

/* Addresses of the stubs, for idt_init(). */
    .section .rodata
    .p2align 3
    .globl isr_stub_table
    .macro ISR_ADDR vec
    .quad isr_stub_\vec
    .endm
isr_stub_table:
    .set vec, 0
    .rept 256
    ISR_ADDR %vec
    .set vec, vec + 1
    .endr

    .bss
    .p2align 12
boot_stack:
    .skip 16384
boot_stack_top:

    .section .note.GNU-stack, "", @progbits
