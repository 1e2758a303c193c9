/*
 * outb PORT VALUE: writes one byte to an I/O port from Linux userspace, the way the
 * guest agent will signal the VMM (tests/guests/ABI.md: 0x600 boot done, 0x604 exit
 * code). busybox has no outb. Freestanding (raw syscalls, no libc) so it links
 * statically without libc.a and stays a few KiB in the initramfs.
 *
 * Before the write it waits for stdout to drain when stdout is a terminal (tcdrain:
 * TCSBRK with 1): the serial tty sends its buffer to the UART by interrupts after
 * `echo` returns, and the exit port stops the VM at once, so without it the last
 * console lines would be lost.
 */
#define SYS_write 1
#define SYS_ioctl 16
#define TCSBRK 0x5409
#define SYS_ioperm 173
#define SYS_exit 60

static long sys3(long n, long a, long b, long c) {
  long r;
  __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
  return r;
}

static unsigned long parse(const char *s) {
  unsigned long v = 0, base = 10;
  if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) { base = 16; s += 2; }
  for (; *s; s++) {
    unsigned long d;
    if (*s >= '0' && *s <= '9') d = *s - '0';
    else if (*s >= 'a' && *s <= 'f') d = *s - 'a' + 10;
    else if (*s >= 'A' && *s <= 'F') d = *s - 'A' + 10;
    else break;
    v = v * base + d;
  }
  return v;
}

static void fail(const char *msg, unsigned long len) {
  sys3(SYS_write, 2, (long)msg, (long)len);
  sys3(SYS_exit, 1, 0, 0);
}

__attribute__((used)) static void start_c(long *sp) {
  long argc = sp[0];
  char **argv = (char **)(sp + 1);
  if (argc != 3) fail("usage: outb PORT VALUE\n", 23);
  unsigned long port = parse(argv[1]);
  unsigned char value = (unsigned char)parse(argv[2]);
  if (sys3(SYS_ioperm, (long)port, 1, 1) != 0) fail("outb: ioperm failed\n", 20);
  sys3(SYS_ioctl, 1, TCSBRK, 1); /* tcdrain(1); ENOTTY when stdout is no terminal */
  __asm__ volatile("outb %0, %w1" : : "a"(value), "Nd"((unsigned short)port));
  sys3(SYS_exit, 0, 0, 0);
}

__asm__(".globl _start\n_start:\n mov %rsp, %rdi\n and $-16, %rsp\n call start_c\n hlt\n");
