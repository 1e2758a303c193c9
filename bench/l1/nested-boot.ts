// Run inside L1 (by bench/nested-boot.bench.ts, through runInL1): boots the same Linux
// kernel and initramfs, alternately, in QEMU (`-M microvm -accel kvm`, the host's
// Debian QEMU, which L1 sees through its read-only view of the host's root) and in the
// host's release `vmctl-vmm` through its API, both against L1's /dev/kvm, and prints
// one JSON line with every run's measurements (the host side takes the medians).
//
// The "first userspace signal" is a marker line the initramfs's /init prints on the
// serial console: the one signal both VMMs carry the same way. Per run:
//  - spawn → marker, both VMMs (L1's clock, in this process);
//  - vmctl-vmm only: API Start call → marker, and Start → vCPUs running (the VMM's own
//    clock: its set-up before the guest's first instruction);
//  - the guest's /proc/uptime at the marker (how long the guest kernel itself took);
//  - KVM's exit counters for the VM (L1's debugfs, the same for both VMMs) at the marker;
//  - the VMM's VmRSS/VmHWM and its RSS beyond guest memory while the guest idles
//    (/init sleeps after the marker, then `reboot -f`);
//  - after the measured rounds, one traced boot of each (L1's kvm tracepoints): exits by
//    reason and port, halted time, the longest silent stretches, spawn → first exit →
//    the marker's bytes on the UART, all on L1's CLOCK_MONOTONIC.
//
//   node --import tsx bench/l1/nested-boot.ts KERNEL INITRD RUNS MEM_MIB VCPUS BOOT_ARGS
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { requireVmmBinary, VmmProcess } from "@vmctl/vmm-client";
import { processCpuMs } from "../lib/process.js";
import { rssExcludingGuestMib } from "../lib/smaps.js";

const [kernel, initrd, runsArg = "5", memArg = "256", vcpusArg = "1", bootArgs = "console=ttyS0 quiet"] = process.argv.slice(2);
if (!kernel || !initrd) {
  console.error("usage: nested-boot.ts KERNEL INITRD [RUNS] [MEM_MIB] [VCPUS] [BOOT_ARGS]");
  process.exit(2);
}
const RUNS = Number(runsArg);
const MEM_MIB = Number(memArg);
const VCPUS = Number(vcpusArg);
/** /init's line: `vmctl-bench: userspace uptime=<seconds>`. */
const MARKER = /vmctl-bench: userspace uptime=([\d.]+)/;
/** Sampled this long after the marker, while /init sleeps (2 s). */
const IDLE_SAMPLE_MS = 500;
/** A VM that has not shown the marker by then has failed. */
const RUN_TIMEOUT_MS = 90_000;
/** After the idle sample the guest reboots itself; past this the VMM is stopped instead. */
const END_GRACE_MS = 3_000;

/**
 * vmctl-vmm; QEMU microvm as shipped; QEMU microvm with its RTC on and qboot (the
 * fastest microvm set-up QEMU offers: see qemuArgs).
 */
export type VmmKind = "vmctl" | "qemu" | "qemu-rtc-qboot";
type QemuKind = Exclude<VmmKind, "vmctl">;

export interface Sample {
  readonly vmm: VmmKind;
  /** VMM process spawned → marker line read from its console (ms, L1's clock). */
  readonly spawnToMarkerMs: number;
  /** vmctl-vmm: the Start call issued → marker line. */
  readonly startToMarkerMs?: number;
  /** vmctl-vmm: spawn → API ready (first GetInfo answered). */
  readonly spawnToApiMs?: number;
  /** vmctl-vmm: Start → vCPUs running, by the VMM's own clock. */
  readonly startToRunMs?: number;
  /** The guest's /proc/uptime when /init printed the marker (ms). */
  readonly guestUptimeMs: number;
  /** CPU time of the VMM process (all threads, guest time included) at the marker. */
  readonly cpuMsAtMarker: number;
  /** KVM's counters for this VM (L1 debugfs) at the marker. */
  readonly kvmStats: Record<string, number>;
  /** The VMM process's page faults and CPU split at the marker (/proc/PID/stat). */
  readonly procStat: Record<string, number>;
  /** vmctl-vmm's own exit counters (GetMetrics) at the end. */
  readonly vmmExits?: Record<string, number>;
  readonly vmRssMib: number;
  readonly vmHwmMib: number;
  /** RSS outside the guest-memory mapping, and the anonymous part of it. */
  readonly rssBeyondGuestMib: number;
  readonly privateBeyondGuestMib: number;
  /** How the VM ended after the idle sample (its own reboot, or stopped by us). */
  readonly ended: string;
  /** Console bytes, for the first run of each (what the guest printed). */
  readonly console?: string;
  /** Traced runs only (not among the measured ones): KVM's view of the boot. */
  readonly trace?: TraceSummary;
}

/**
 * From L1's kvm tracepoints (kvm_entry, kvm_exit, kvm_pio, kvm_mmio, kvm_vcpu_wakeup), for one traced boot: where
 * the guest's time and exits went. Times on CLOCK_MONOTONIC, relative to the spawn.
 */
export interface TraceSummary {
  readonly events: number;
  /** Spawn → the VM's first exit (≈ first guest instruction: VMM set-up before it). */
  readonly spawnToFirstExitMs?: number;
  /** First exit → the last fw_cfg access (QEMU: the firmware's hand-over to the kernel). */
  readonly firstExitToLastFwCfgMs?: number;
  /** First exit → the marker's bytes written to the UART (0x3f8) by /init. */
  readonly firstExitToUserspaceMs?: number;
  /** Spawn → the marker on the UART. */
  readonly spawnToUserspaceMs?: number;
  /** Time the vCPU spent halted (kvm_vcpu_wakeup), and how many halts, before the marker. */
  readonly haltedMs: number;
  readonly halts: number;
  /** Exits by SVM exit reason, up to the marker. */
  readonly exitReasons: Record<string, number>;
  /** Port accesses ("in 0x61", "out 0x3f8"), the most frequent, up to the marker. */
  readonly topPorts: Record<string, number>;
  /** MMIO accesses by page, the most frequent. */
  readonly topMmio: Record<string, number>;
  /** The longest stretches without any KVM event before the marker, and what preceded each. */
  readonly longestGaps: readonly { atMs: number; gapMs: number; after: string }[];
  /** Time in the guest (entry → exit) and out of it (exit → entry: L1's KVM and the VMM), up to the marker. */
  readonly inGuestMs: number;
  readonly outOfGuestMs: number;
  /** Out-of-guest time by exit ("npf", "io out 0x3f8", "mmio write 0xfee00000"…), the largest, in ms, with counts. */
  readonly outOfGuestByExit: Record<string, { ms: number; n: number }>;
}

function statusMib(pid: number, field: "VmRSS" | "VmHWM"): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m) throw new Error(`no ${field} for pid ${pid}`);
  return Number(m[1]) / 1024;
}

const DEBUGFS_KVM = "/sys/kernel/debug/kvm";
function mountDebugfs(): void {
  if (existsSync(DEBUGFS_KVM)) return;
  spawnSync("mount", ["-t", "debugfs", "debugfs", "/sys/kernel/debug"], { stdio: "ignore" });
}

/** KVM's per-VM counters (summed over vCPUs), from debugfs directory `<pid>-<vm fd>`. */
function kvmStats(pid: number): Record<string, number> {
  const stats: Record<string, number> = {};
  if (!existsSync(DEBUGFS_KVM)) return stats;
  // The directory is named after the *thread* that created the VM (vmctl-vmm creates it
  // on an API thread), so match any of the process's threads; failing that, the one VM
  // that exists (this script runs one VM at a time).
  const tids = new Set(readdirSync(`/proc/${pid}/task`));
  const vms = readdirSync(DEBUGFS_KVM).filter((d) => /^\d+-\d+$/.test(d));
  const dir = vms.find((d) => tids.has(d.split("-")[0] as string)) ?? (vms.length === 1 ? vms[0] : undefined);
  if (!dir) return stats;
  for (const name of [
    "exits",
    "io_exits",
    "mmio_exits",
    "halt_exits",
    "irq_exits",
    "irq_window_exits",
    "signal_exits",
    "request_irq_exits",
    "insn_emulation",
    "irq_injections",
    "pf_taken",
    "halt_wakeup",
    "hypercalls",
  ]) {
    try {
      stats[name] = Number(readFileSync(`${DEBUGFS_KVM}/${dir}/${name}`, "utf8").trim());
    } catch {
      // not every kernel has every counter
    }
  }
  return stats;
}

const TRACING = "/sys/kernel/debug/tracing";
const TRACE_EVENTS = ["kvm/kvm_entry", "kvm/kvm_exit", "kvm/kvm_pio", "kvm/kvm_mmio", "kvm/kvm_vcpu_wakeup"];
const tracingWrite = (file: string, value: string) => writeFileSync(`${TRACING}/${file}`, value);
const monoMs = () => Number(process.hrtime.bigint()) / 1e6;

function traceStart(): void {
  tracingWrite("tracing_on", "0");
  tracingWrite("trace", "");
  tracingWrite("trace_clock", "mono");
  tracingWrite("buffer_size_kb", "32768");
  for (const e of TRACE_EVENTS) tracingWrite(`events/${e}/enable`, "1");
  tracingWrite("tracing_on", "1");
}

/** The marker as /init writes it to the UART (port 0x3f8), byte by byte. */
const MARKER_ON_WIRE = "vmctl-bench:";

function traceStop(spawnMonoMs: number): TraceSummary {
  tracingWrite("tracing_on", "0");
  for (const e of TRACE_EVENTS) tracingWrite(`events/${e}/enable`, "0");
  const text = readFileSync(`${TRACING}/trace`, "utf8");
  tracingWrite("trace", "");
  const reasons = new Map<string, number>();
  const ports = new Map<string, number>();
  const mmio = new Map<string, number>();
  const bump = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);
  let events = 0;
  let firstExit: number | undefined;
  let lastFwCfg: number | undefined;
  let userspace: number | undefined;
  let uart = "";
  let haltedNs = 0;
  let halts = 0;
  let previous: { t: number; what: string } | undefined;
  let inGuest = 0;
  let outOfGuest = 0;
  let enteredAt: number | undefined;
  let exited: { t: number; key: string } | undefined;
  const byExit = new Map<string, { ms: number; n: number }>();
  const gaps: { atMs: number; gapMs: number; after: string }[] = [];
  for (const line of text.split("\n")) {
    const m = /\s(\d+\.\d+): (kvm_entry|kvm_exit|kvm_pio|kvm_mmio|kvm_vcpu_wakeup): (.*)$/.exec(line);
    if (!m) continue;
    events++;
    if (userspace !== undefined) continue; // only the boot: up to the marker
    const t = Number(m[1]) * 1000;
    const body = m[3] as string;
    let what = m[2] as string;
    if (m[2] === "kvm_entry") {
      if (exited) {
        const e = byExit.get(exited.key) ?? { ms: 0, n: 0 };
        byExit.set(exited.key, { ms: e.ms + (t - exited.t), n: e.n + 1 });
        outOfGuest += t - exited.t;
        exited = undefined;
      }
      enteredAt = t;
      continue; // entries are not "events" for the gaps: a gap is time without an exit
    } else if (m[2] === "kvm_exit") {
      firstExit ??= t;
      const reason = /reason (\S+)/.exec(body)?.[1] ?? "?";
      what = `exit ${reason}`;
      bump(reasons, reason);
      if (enteredAt !== undefined) inGuest += t - enteredAt;
      enteredAt = undefined;
      exited = { t, key: reason };
    } else if (m[2] === "kvm_pio") {
      const p = /pio_(read|write) at 0x([0-9a-f]+) size \d+ count \d+ val 0x([0-9a-f]+)/.exec(body);
      if (!p) continue;
      const port = Number.parseInt(p[2] as string, 16);
      what = `${p[1] === "read" ? "in" : "out"} 0x${port.toString(16)}`;
      bump(ports, what);
      if (exited) exited.key = `io ${what}`;
      if (port >= 0x510 && port <= 0x51b) lastFwCfg = t;
      if (port === 0x3f8 && p[1] === "write") {
        uart = (uart + String.fromCharCode(Number.parseInt(p[3] as string, 16))).slice(-MARKER_ON_WIRE.length);
        if (uart === MARKER_ON_WIRE) userspace = t;
      }
    } else if (m[2] === "kvm_mmio") {
      const a = /^mmio (\S+) len \d+ gpa 0x([0-9a-f]+)/.exec(body);
      if (a) {
        what = `mmio ${a[1]} 0x${(Math.floor(Number.parseInt(a[2] as string, 16) / 4096) * 4096).toString(16)}`;
        bump(mmio, what);
        if (exited) exited.key = what;
      }
    } else {
      const w = /(wait|poll) time (\d+) ns/.exec(body);
      if (w) {
        haltedNs += Number(w[2]);
        halts++;
        what = `wakeup after ${(Number(w[2]) / 1e6).toFixed(1)} ms`;
      }
    }
    if (previous && firstExit !== undefined) gaps.push({ atMs: previous.t - firstExit, gapMs: t - previous.t, after: previous.what });
    previous = { t, what };
  }
  const top = (m: Map<string, number>, n: number) => Object.fromEntries([...m].sort((a, b) => b[1] - a[1]).slice(0, n));
  const rel = (t: number | undefined, from: number | undefined) => (t === undefined || from === undefined ? undefined : t - from);
  const round = (n: number) => Math.round(n * 10) / 10;
  return {
    events,
    spawnToFirstExitMs: rel(firstExit, spawnMonoMs),
    firstExitToLastFwCfgMs: rel(lastFwCfg, firstExit),
    firstExitToUserspaceMs: rel(userspace, firstExit),
    spawnToUserspaceMs: rel(userspace, spawnMonoMs),
    haltedMs: haltedNs / 1e6,
    halts,
    exitReasons: top(reasons, 30),
    topPorts: top(ports, 20),
    topMmio: top(mmio, 10),
    longestGaps: gaps
      .sort((a, b) => b.gapMs - a.gapMs)
      .slice(0, 10)
      .map((g) => ({ atMs: round(g.atMs), gapMs: round(g.gapMs), after: g.after })),
    inGuestMs: round(inGuest),
    outOfGuestMs: round(outOfGuest),
    outOfGuestByExit: Object.fromEntries(
      [...byExit]
        .sort((a, b) => b[1].ms - a[1].ms)
        .slice(0, 12)
        .map(([k, v]) => [k, { ms: round(v.ms), n: v.n }]),
    ),
  };
}

interface ProcStat {
  /** Minor/major page faults of the VMM process (L1 faults: costly under TCG). */
  minflt: number;
  majflt: number;
  /** User and system CPU time (ms); a vCPU thread's guest time counts as user time. */
  utimeMs: number;
  stimeMs: number;
}

function procStat(pid: number): ProcStat {
  const text = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = text.slice(text.lastIndexOf(")") + 2).split(" "); // f[0] is field 3 (state)
  const tick = 10; // USER_HZ = 100
  return { minflt: Number(f[7]), majflt: Number(f[9]), utimeMs: Number(f[11]) * tick, stimeMs: Number(f[12]) * tick };
}

interface AtMarker {
  at: number;
  guestUptimeMs: number;
  cpuMs: number;
  stat: ProcStat;
  kvm: Record<string, number>;
}

/** Watches a console stream for the marker; samples the process the moment it appears. */
class MarkerWatch {
  text = "";
  marker?: AtMarker;
  readonly #seen: Promise<AtMarker>;
  #resolve!: (m: AtMarker) => void;
  constructor(private readonly pid: number) {
    this.#seen = new Promise((resolve) => (this.#resolve = resolve));
  }
  push(chunk: string): void {
    if (this.marker) {
      this.text += chunk;
      return;
    }
    const at = performance.now();
    this.text += chunk;
    const m = MARKER.exec(this.text);
    if (!m) return;
    this.marker = {
      at,
      guestUptimeMs: Number(m[1]) * 1000,
      cpuMs: processCpuMs(this.pid),
      stat: procStat(this.pid),
      kvm: kvmStats(this.pid),
    };
    this.#resolve(this.marker);
  }
  seen(timeoutMs: number, what: string): Promise<AtMarker> {
    return Promise.race([
      this.#seen,
      // Unref'd: a pending timeout must not keep this script alive once every run is done.
      sleep(timeoutMs, undefined, { ref: false }).then(() => {
        throw new Error(`${what}: no marker after ${timeoutMs} ms; console:\n${this.text.slice(-3000)}`);
      }),
    ]);
  }
}

function idleMemory(pid: number): Pick<Sample, "vmRssMib" | "vmHwmMib" | "rssBeyondGuestMib" | "privateBeyondGuestMib"> {
  const beyond = rssExcludingGuestMib(pid, MEM_MIB * 1024 * 1024);
  return {
    vmRssMib: statusMib(pid, "VmRSS"),
    vmHwmMib: statusMib(pid, "VmHWM"),
    rssBeyondGuestMib: beyond.totalMib - beyond.guestMib,
    privateBeyondGuestMib: beyond.privateMib,
  };
}

function findQemu(): string {
  for (const dir of ["/usr/bin", "/usr/local/bin"]) {
    if (existsSync(`${dir}/qemu-system-x86_64`)) return `${dir}/qemu-system-x86_64`;
  }
  throw new Error("qemu-system-x86_64 not found in L1 (the host's /usr/bin)");
}

/**
 * The QEMU command line: microvm, KVM, `-cpu host` (vmctl-vmm also gives the guest the
 * host's CPUID), PVH boot of the ELF.
 *  - "qemu": microvm's defaults. Its firmware is Debian's bios-microvm.bin (SeaBIOS),
 *    and with KVM `rtc=auto` means *no* CMOS RTC: Linux's rtc_cmos then reads 0xff
 *    ("update in progress") from ports 0x70/0x71 and polls for its full second
 *    (10,000 rounds, 40,000 port exits), the defect vmctl-vmm's CMOS fixed.
 *  - "qemu-rtc-qboot": `rtc=on` and qboot (the firmware QEMU ships for fast boots, as
 *    the nested host's L1 uses): the strongest QEMU peer for this kernel.
 */
export function qemuArgs(variant: QemuKind): string[] {
  return [
    ...(variant === "qemu-rtc-qboot" ? ["-M", "microvm,rtc=on", "-bios", "qboot.rom"] : ["-M", "microvm"]),
    "-accel", "kvm",
    "-cpu", "host",
    "-m", String(MEM_MIB),
    "-smp", String(VCPUS),
    "-nodefaults", "-no-user-config", "-nographic",
    "-serial", "stdio",
    "-no-reboot",
    "-kernel", kernel as string,
    "-initrd", initrd as string,
    "-append", bootArgs,
  ];
}

interface RunOptions {
  readonly keepConsole?: boolean;
  readonly trace?: boolean;
}

async function qemuRun(qemu: string, variant: QemuKind, opts: RunOptions = {}): Promise<Sample> {
  if (opts.trace) traceStart();
  const spawnMono = monoMs();
  const started = performance.now();
  const child = spawn(qemu, qemuArgs(variant), { stdio: ["ignore", "pipe", "pipe"] });
  const pid = child.pid as number;
  const watch = new MarkerWatch(pid);
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => watch.push(d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  const closed = new Promise<string>((resolve) =>
    child.once("close", (code, signal) => resolve(signal ? `signal ${signal}` : `exit ${code}`)),
  );
  try {
    const marker = await Promise.race([
      watch.seen(RUN_TIMEOUT_MS, "qemu"),
      closed.then((how) => {
        throw new Error(`qemu ended (${how}) before the marker: ${stderr.trim()}\nconsole:\n${watch.text.slice(-3000)}`);
      }),
    ]);
    await sleep(IDLE_SAMPLE_MS);
    const memory = idleMemory(pid);
    // Read (slowly) after the memory sample: the events after the marker are not counted.
    const trace = opts.trace ? traceStop(spawnMono) : undefined;
    const ended = await Promise.race([closed, sleep(END_GRACE_MS, undefined, { ref: false }).then(() => "")]);
    return {
      vmm: variant,
      spawnToMarkerMs: marker.at - started,
      guestUptimeMs: marker.guestUptimeMs,
      cpuMsAtMarker: marker.cpuMs,
      kvmStats: marker.kvm,
      procStat: { ...marker.stat },
      ...memory,
      ended: ended ? `guest (qemu ${ended})` : `killed after ${END_GRACE_MS} ms`,
      ...(opts.keepConsole ? { console: watch.text } : {}),
      ...(trace ? { trace } : {}),
    };
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL");
      await closed;
    }
  }
}

async function vmctlRun(binary: string, opts: RunOptions = {}): Promise<Sample> {
  if (opts.trace) traceStart();
  const spawnMono = monoMs();
  const started = performance.now();
  const vmm = await VmmProcess.spawn({ binary, readyTimeoutMs: 30_000 });
  const apiReady = performance.now();
  try {
    const { client } = vmm;
    await client.putMachineConfig({ vcpuCount: VCPUS, memSizeMib: MEM_MIB });
    await client.putBootSource({ kernelImagePath: kernel as string, initrdPath: initrd as string, bootArgs });
    const watch = new MarkerWatch(vmm.pid);
    const session = client.console({ replay: true });
    const streamed = (async () => {
      for await (const chunk of session) watch.push(chunk.toString("utf8"));
    })();
    const exited = client.waitExit();
    exited.catch(() => undefined);
    streamed.catch(() => undefined);
    const startAt = performance.now();
    await client.start();
    const marker = await Promise.race([
      watch.seen(RUN_TIMEOUT_MS, "vmctl-vmm"),
      exited.then((s) => {
        throw new Error(`vmctl-vmm VM ended (${JSON.stringify(s.exit)}) before the marker; console:\n${watch.text.slice(-3000)}`);
      }),
    ]);
    await sleep(IDLE_SAMPLE_MS);
    const memory = idleMemory(vmm.pid);
    const trace = opts.trace ? traceStop(spawnMono) : undefined;
    const end = await Promise.race([exited, sleep(END_GRACE_MS, undefined, { ref: false }).then(() => undefined)]);
    const metrics = await client.getMetrics();
    return {
      vmm: "vmctl",
      spawnToMarkerMs: marker.at - started,
      startToMarkerMs: marker.at - startAt,
      spawnToApiMs: apiReady - started,
      startToRunMs: metrics.startToRunUs / 1000,
      guestUptimeMs: marker.guestUptimeMs,
      cpuMsAtMarker: marker.cpuMs,
      kvmStats: marker.kvm,
      procStat: { ...marker.stat },
      vmmExits: { ...metrics.vmExits },
      ...memory,
      ended: end ? `guest (${end.exit?.reason ?? end.phase}${end.exit?.detail ? `: ${end.exit.detail}` : ""})` : `stopped after ${END_GRACE_MS} ms`,
      ...(opts.keepConsole ? { console: watch.text } : {}),
      ...(trace ? { trace } : {}),
    };
  } finally {
    await vmm.close();
  }
}

mountDebugfs();
const qemu = findQemu();
const qemuVersion = spawnSync(qemu, ["--version"], { encoding: "utf8" }).stdout.split("\n")[0] ?? "";
const binary = requireVmmBinary();
const KINDS: readonly VmmKind[] = ["vmctl", "qemu", "qemu-rtc-qboot"];
const run = (kind: VmmKind, opts: RunOptions = {}): Promise<Sample> => (kind === "vmctl" ? vmctlRun(binary, opts) : qemuRun(qemu, kind, opts));
// One unmeasured run of each first: the binaries and libraries come over 9p on first use.
const warmup: Sample[] = [];
for (const kind of KINDS) warmup.push(await run(kind, { keepConsole: true }));
const samples: Sample[] = [];
for (let i = 0; i < RUNS; i++) {
  // Rotate the order, so that none always follows the same other.
  for (let j = 0; j < KINDS.length; j++) samples.push(await run(KINDS[(i + j) % KINDS.length] as VmmKind));
  console.error(`nested-boot: round ${i + 1}/${RUNS} done`);
}
// Traced boots last, apart from the measured ones (tracing slows the exits down).
const traced: Sample[] = [];
if (existsSync(TRACING)) {
  for (const kind of KINDS) traced.push(await run(kind, { trace: true }));
}
console.log(
  JSON.stringify({
    qemu: { path: qemu, version: qemuVersion, args: qemuArgs("qemu"), tunedArgs: qemuArgs("qemu-rtc-qboot") },
    thp: readFileSync("/sys/kernel/mm/transparent_hugepage/enabled", "utf8").trim(),
    vmctl: { path: binary },
    debugfs: existsSync(DEBUGFS_KVM),
    l1Kernel: spawnSync("uname", ["-r"], { encoding: "utf8" }).stdout.trim(),
    warmup,
    samples,
    traced,
  }),
);
