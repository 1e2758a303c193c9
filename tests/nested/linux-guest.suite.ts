// A stock Linux kernel (Debian's own 6.1, the L1 kernel the nested host extracted) booted
// by vmctl-vmm as an L2 guest inside L1, with a busybox initramfs whose /init signals the
// VMM from userspace (boot-done port, then exit-code port; tests/guests/ABI.md). Proves
// the VMM fixes Linux needs: the MP table's interrupt wiring (the IOAPIC stays on: no
// `noapic`), the CMOS RTC (the guest's clock, `rtc_cmos` without spinning) and the
// i8042. Serial: one QEMU at a time on these 2-core machines.
import test, { type ExecutionContext } from "ava";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { L1BootError } from "./errors.js";
import { busyboxTree, packInitramfs, requireL1Kernel, runInL1 } from "./index.js";

const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
const EXIT_CODE = 42;
// No `noapic`, `initcall_blacklist` or anything else that hides a VMM defect. `quiet`
// keeps warnings and errors on the console (what this test looks for) and drops the
// info lines, which under nesting cost seconds of serial port exits; /init prints the
// info lines it needs from `dmesg`.
const BOOT_ARGS = "console=ttyS0 quiet panic=-1";

/**
 * /init: mounts what it reads, prints `vmctl-linux:` lines the test parses, writes the
 * boot-done port, then the exit code. `dmesg` lines for the devices this test is about
 * go to the console too, so a failure shows them.
 */
const INIT = `#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev
/bin/busybox mount -t devtmpfs dev /dev
exec >/dev/console 2>&1 </dev/console
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
/bin/outb 0x600 1
echo "vmctl-linux: release $(uname -r)"
echo "vmctl-linux: online $(cat /sys/devices/system/cpu/online)"
echo "vmctl-linux: cpus $(grep -c ^processor /proc/cpuinfo)"
echo "vmctl-linux: date $(date +%s)"
echo "vmctl-linux: rtc $(cat /sys/class/rtc/rtc0/since_epoch 2>&1)"
echo "vmctl-linux: cmdline $(cat /proc/cmdline)"
echo "vmctl-linux: uptime $(cut -d' ' -f1 /proc/uptime)"
echo "vmctl-linux: ioapic-irqs $(grep -c IO-APIC /proc/interrupts)"
grep IO-APIC /proc/interrupts | sed 's/^/vmctl-irq: /'
dmesg | grep -i -E 'rtc|i8042|ExtINT|IO-APIC|timer|MP-BIOS|clocksource' | sed 's/^/vmctl-dmesg: /'
# The tty sends its buffer to the UART by interrupts, after echo returns: give it time
# to drain before the exit port stops the VM.
sleep 1
/bin/outb 0x604 ${EXIT_CODE}
echo "vmctl-linux: still running after the exit port"
`;

/** Builds the initramfs (busybox-static, the outb helper, /init) into `dir`. */
function buildInitramfs(dir: string): string {
  return packInitramfs(busyboxTree(join(dir, "root"), { init: INIT }), join(dir, "initramfs.cpio"));
}

interface L2Run {
  state: { phase: string; exit?: { reason: string; code: number; detail?: string } };
  console: string;
  bootDoneUs?: number;
  vmExits: Record<string, number>;
  runMs: number;
  clockBeforeMs: number;
  clockAfterMs: number;
}

function line(consoleText: string, key: string): string | undefined {
  const m = consoleText.match(new RegExp(`^vmctl-linux: ${key} (.*?)\\r?$`, "m"));
  return m?.[1];
}

async function bootLinux(t: ExecutionContext, vcpus: number): Promise<{ run: L2Run; console: string }> {
  const kernel = requireL1Kernel();
  const dir = mkdtempSync(join(tmpdir(), "vmctl-linux-guest-"));
  try {
    const initrd = buildInitramfs(dir);
    const r = await runInL1({
      command: ["node", "tests/nested/l1/boot-linux.mjs", kernel.vmlinux, initrd, String(vcpus), "256", BOOT_ARGS],
      cwd: REPO_ROOT,
      timeoutMs: 45_000,
    });
    if (r.code !== 0) throw new Error(`boot-linux.mjs exited ${r.code}: ${r.stderr}\nL1 console:\n${r.console}`);
    const run = JSON.parse(r.stdout.trim().split("\n").pop() ?? "{}") as L2Run;
    // Debugging aid: VMCTL_LINUX_CONSOLE_OUT=/tmp/l2 keeps each L2 console in a file.
    if (process.env.VMCTL_LINUX_CONSOLE_OUT) writeFileSync(`${process.env.VMCTL_LINUX_CONSOLE_OUT}-${vcpus}.log`, run.console);
    t.log(`L1 ${r.kernelRelease}: boot to command ${Math.round(r.bootMs)} ms, QEMU wall ${Math.round(r.wallMs)} ms`);
    return { run, console: run.console };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function checkBoot(t: ExecutionContext, run: L2Run, vcpus: number): void {
  const c = run.console;
  t.log(`L2 kernel ${line(c, "release")}, ${vcpus} vCPU(s): Start → boot-done ${((run.bootDoneUs ?? 0) / 1000).toFixed(0)} ms, Start → exit ${run.runMs} ms`);
  t.is(run.state.exit?.reason, "guest-exit", `${run.state.exit?.detail ?? ""}\n${c}`);
  t.is(run.state.exit?.code, EXIT_CODE, c);
  t.true((run.bootDoneUs ?? 0) > 0, "boot-done port written from userspace");
  t.true((run.bootDoneUs ?? 0) / 1000 <= run.runMs);
  t.false(c.includes("still running after the exit port"));
  const cmdline = line(c, "cmdline") ?? "";
  t.true(cmdline.includes("console=ttyS0"), c);
  t.false(/\bnoapic\b|initcall_blacklist/.test(cmdline));
  // The IOAPIC path: Linux routed its interrupts through the IOAPIC (the MP table's
  // ISA IRQ n → pin n wiring): the keyboard, the UART and the RTC below.
  t.true(Number(line(c, "ioapic-irqs") ?? 0) >= 3, c);
  // The timer check passed: the PIT's IRQ 0 on IOAPIC pin 0.
  t.regex(c, /^vmctl-irq:\s+0:.*IO-APIC\s+0-edge\s+timer/m, "the PIT's IRQ 0 on IOAPIC pin 0");
  t.regex(c, /^vmctl-irq:\s+1:.*IO-APIC\s+1-edge\s+i8042/m, c);
  t.regex(c, /^vmctl-irq:\s+4:.*IO-APIC\s+4-edge\s+ttyS0/m, c);
  t.false(/ExtINT not setup|BUG:|Kernel panic|MP-BIOS bug|timer doesn't work/.test(c), c);
  t.is(line(c, "online"), vcpus === 1 ? "0" : `0-${vcpus - 1}`, c);
  t.is(Number(line(c, "cpus")), vcpus, c);
  // The CMOS RTC: the guest's clock comes from it and matches L1's.
  const guestSecs = Number(line(c, "date"));
  t.true(
    guestSecs >= Math.floor(run.clockBeforeMs / 1000) - 2 && guestSecs <= Math.ceil(run.clockAfterMs / 1000) + 2,
    `guest date ${guestSecs}, L1 clock ${run.clockBeforeMs / 1000}..${run.clockAfterMs / 1000}`,
  );
  // The CMOS RTC itself (read by the guest's driver, not kvmclock) says the same.
  const rtcSecs = Number(line(c, "rtc"));
  t.true(
    rtcSecs >= Math.floor(run.clockBeforeMs / 1000) - 2 && rtcSecs <= Math.ceil(run.clockAfterMs / 1000) + 2,
    `guest RTC ${line(c, "rtc")}, L1 clock ${run.clockBeforeMs / 1000}..${run.clockAfterMs / 1000}`,
  );
  // Registered: rtc_cmos holds IRQ 8 (from /proc/interrupts, printed before the dmesg lines).
  t.regex(c, /^vmctl-irq:\s+8:.*IO-APIC\s+8-edge\s+rtc0/m, c);
  t.false(/rtc_cmos.*broken or not accessible/.test(c), c);
  t.false(/Keylock active|Failed to disable AUX port/.test(c), c);
  // rtc_cmos on unclaimed ports (reading 0xff: "update in progress" forever) spun for
  // seconds, ~40,000 port reads; a whole boot now takes about 1,000.
  t.true((run.vmExits.io_in ?? 0) < 10_000, `port reads: ${JSON.stringify(run.vmExits)}`);
  t.log(`VM exits: ${JSON.stringify(run.vmExits)}`);
  // With `quiet` the console carries the kernel's warnings and errors only. Those a
  // machine without ACPI or PCI always prints are expected; anything else is logged
  // for whoever looks next (not failed on: nesting adds its own timing warnings).
  const expected = [/ACPI BIOS Error \(bug\): A valid RSDP was not found/, /PCI: Fatal: No config space access function found/];
  const kernelLines = c.split(/\r?\n/).filter((l) => /^\[\s*\d+\.\d+\]/.test(l));
  const unexpected = kernelLines.filter((l) => !expected.some((re) => re.test(l)));
  if (unexpected.length > 0) t.log(`kernel warnings on the console:\n${unexpected.join("\n")}`);
}

/**
 * One boot, or two when the first ends in a triple fault after the guest's userspace has
 * run (its facts are on the console), or when L1 itself went down mid-run (QEMU exited
 * without L1 reporting). Both were seen only in CI runs under heavy load, never alone: the
 * L2 faults while the guest idled after printing, L1 during an L2 boot (QEMU's software
 * SVM is L1's KVM here); the cause is not known yet. The first attempt is logged in full,
 * and any other failure — or a second one — fails the test.
 */
async function bootLinuxOnceMore(t: ExecutionContext, vcpus: number): Promise<L2Run> {
  let first: L2Run;
  try {
    first = (await bootLinux(t, vcpus)).run;
  } catch (err) {
    if (!(err instanceof L1BootError)) throw err;
    t.log(`L1 went down during the first boot; booting once more. ${err.message}`);
    return (await bootLinux(t, vcpus)).run;
  }
  const faulted = first.state.exit?.reason !== "guest-exit" && /triple fault/.test(first.state.exit?.detail ?? "");
  if (!faulted || line(first.console, "ioapic-irqs") === undefined) return first;
  t.log(`first boot ended in ${first.state.exit?.detail} after userspace ran; booting once more. Its console:\n${first.console}`);
  return (await bootLinux(t, vcpus)).run;
}

test.serial("Debian's kernel boots in vmctl-vmm inside L1 with its IOAPIC on (1 vCPU)", async (t) => {
  t.timeout(100_000);
  checkBoot(t, await bootLinuxOnceMore(t, 1), 1);
});

test.serial("Debian's kernel brings both vCPUs online in vmctl-vmm inside L1 (2 vCPUs)", async (t) => {
  t.timeout(100_000);
  checkBoot(t, await bootLinuxOnceMore(t, 2), 2);
});
