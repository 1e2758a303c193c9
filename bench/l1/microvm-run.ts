// Run inside L1 (by bench/microvm-run.bench.ts, through runInL1): the orchestrator as a
// user runs it — vmctld (`vmctl daemon`, started first, as tests/nested/l1/linux-cli.mjs
// does) and the built CLI — against L1's /dev/kvm, next to Debian's QEMU as the peer.
// Prints one JSON line (L1Output) with every round's samples; the host takes medians.
//
// Per round (after an unmeasured warm-up that prepares the default image):
//  1. `vmctl run --rm --target microvm default -- true`: the CLI's wall time; and QEMU
//     (`-M microvm,rtc=on,acpi=off -bios qboot.rom -accel kvm`) booting the same kernel on the same
//     image base disk to `/bin/sh -c "true; /sbin/reboot -f"`: process spawn → QEMU gone.
//  2. `vmctl run -d --target microvm default -- sleep 600`, then the guest agent's GetInfo
//     over the service's relay socket: agentStartBoottimeNs, workloadExecBoottimeNs.
//  3. exec round trips through vmctld with @vmctl/client: `true` in that image VM and in
//     an oci service (busybox rootfs, started once), interleaved.
//
//   node --import tsx bench/l1/microvm-run.ts RUNS EXEC_PER_ROUND OCI_ROOTFS KERNEL
import { spawn, spawnSync } from "node:child_process";
import { appendFileSync, existsSync, readdirSync, readFileSync, realpathSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { connect, type VmctlClient } from "@vmctl/client";
import { execToEnd } from "@vmctl/core/target-kit";
import { AgentClient, type agent } from "@vmctl/proto";

/** A VMM's run as vmctld prepared it: the parts of services/<id>/vm.json the peer copies. */
export interface VmFile {
  readonly kernel: string;
  readonly bootArgs: string;
  readonly vcpus: number;
  readonly memoryMib: number;
  readonly image: { readonly reference: string; readonly digest: string; readonly disk: string; readonly diskBytes: number };
  readonly agent: { readonly relaySocket: string };
}

/** The agent's clocks (guest CLOCK_BOOTTIME, ms) for one image VM. */
export interface AgentTimes {
  readonly agentStartMs: number;
  readonly workloadExecMs: number;
  /**
   * The agent's main → its vsock listener bound (init's mounts done), from its console line
   * "serving on vsock port N (… after start)"; undefined when the line is not in console.log.
   */
  readonly servingAfterStartMs?: number;
}

export interface Round {
  /** `vmctl run --rm --target microvm default -- true`: CLI spawn → CLI exit (L1's clock). */
  readonly cliRunMs: number;
  /** QEMU spawn → QEMU exit (the guest's reboot, `-no-reboot`). */
  readonly qemuMs: number;
  /** `vmctl run -d … sleep 600`: CLI spawn → exit (the service runs). */
  readonly detachMs: number;
  readonly agent: AgentTimes;
  /** `true` exec'd through vmctld: client.exec → execToEnd done, each (ms). */
  readonly execMicrovmMs: readonly number[];
  readonly execOciMs: readonly number[];
  /** `vmctl rm -f` of the detached VM. */
  readonly rmMs: number;
  /** `vmctl ps`: the CLI's own cost (the native front's start, connect, one call) in the same L1. */
  readonly cliPsMs: number;
}

export interface L1Output {
  readonly qemu: { readonly path: string; readonly version: string; readonly args: readonly string[] };
  /** The detached image VM's vm.json (the first round's), as vmctld wrote it. */
  readonly vm: VmFile;
  /** The kernel the host asked for (requireGuestKernel) is the one vmctld booted. */
  readonly kernelMatches: boolean;
  readonly l1Kernel: string;
  readonly daemonStartMs: number;
  readonly warmupRunMs: number;
  readonly warmupQemuConsole: string;
  /** Why the oci service or its exec failed (the microvm figures stand alone then). */
  readonly ociError?: string;
  readonly rounds: readonly Round[];
}

const [runsArg = "5", execArg = "20", ociRootfs, expectedKernel] = process.argv.slice(2);
if (!ociRootfs || !expectedKernel) {
  console.error("usage: microvm-run.ts RUNS EXEC_PER_ROUND OCI_ROOTFS KERNEL");
  process.exit(2);
}
const RUNS = Number(runsArg);
const EXEC_N = Number(execArg);
/** `vmctl` as users type it: the native front (crates/cli), which serves run and ps itself. */
const CLI = fileURLToPath(new URL("../../target/x86_64-unknown-linux-gnu/release/vmctl", import.meta.url));
const STATE_DIR = "/tmp/vmctl-bench-microvm-run";
const SOCKET = join(STATE_DIR, "vmctld.sock");
const ENV = { ...process.env, VMCTL_STATE_DIR: STATE_DIR, VMCTL_SOCKET: SOCKET };
/** The peer's workload; `reboot=t` makes its reboot a triple fault, which ends QEMU under -no-reboot. */
const PEER_WORKLOAD = ["init=/bin/sh", "-c", '"true; /sbin/reboot -f"'];
const PEER_WORKLOAD_CHECKED = ["init=/bin/sh", "-c", '"true; echo vmctl-bench-peer-ran; /sbin/reboot -f"'];

/** Progress: stderr (kept in a file by L1) and L1's console (the host shows it live). */
function progress(message: string): void {
  console.error(`microvm-run: ${message}`);
  try {
    appendFileSync("/dev/console", `vmctl-bench: ${message}\n`);
  } catch {
    // the console is a convenience; stderr has the line
  }
}

interface Finished {
  readonly code: number | string;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

/** Runs a command to its end, timed from spawn to close; killed after `timeoutMs`. */
async function runTimed(command: string, args: readonly string[], timeoutMs: number): Promise<Finished> {
  const started = performance.now();
  const child = spawn(command, args, { env: ENV, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const code = await new Promise<number | string>((resolve) => child.once("close", (c, signal) => resolve(c ?? signal ?? "?")));
  const ms = performance.now() - started;
  clearTimeout(timer);
  return { code, stdout, stderr, ms };
}

/** The CLI; a non-zero exit is an error naming the command and its output. */
async function cli(args: readonly string[], timeoutMs = 120_000): Promise<Finished> {
  const r = await runTimed(CLI, args, timeoutMs);
  if (r.code !== 0) throw new Error(`vmctl ${args.join(" ")} exited ${r.code} after ${Math.round(r.ms)} ms: ${r.stderr.slice(-3000)} ${r.stdout.slice(-1000)}`);
  return r;
}

interface Daemon {
  readonly startMs: number;
  stop(): Promise<void>;
}

/** vmctld in the background, as `vmctl daemon` runs it; resolves once it serves. */
async function startDaemon(): Promise<Daemon> {
  const started = performance.now();
  const child = spawn(CLI, ["daemon"], { env: ENV, stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  const onLog = (d: string): void => void (log = (log + d).slice(-20_000));
  child.stdout.setEncoding("utf8").on("data", onLog);
  child.stderr.setEncoding("utf8").on("data", onLog);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  for (const deadline = Date.now() + 120_000; !(log.includes("orchestrator ready") && existsSync(SOCKET)); await sleep(100)) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`vmctld exited while starting: ${log.slice(-3000)}`);
    if (Date.now() > deadline) throw new Error(`vmctld not serving after 120 s: ${log.slice(-3000)}`);
  }
  const stop = async (): Promise<void> => {
    child.kill("SIGTERM");
    if ((await Promise.race([exited.then(() => true), sleep(10_000, false, { ref: false })])) === false) child.kill("SIGKILL");
  };
  return { startMs: performance.now() - started, stop };
}

/** vmctld's record of a service's VM: services/<id>/vm.json. */
function readVmFile(serviceId: string): VmFile {
  const file = join(STATE_DIR, "services", serviceId, "vm.json");
  if (!existsSync(file)) {
    const services = existsSync(join(STATE_DIR, "services")) ? readdirSync(join(STATE_DIR, "services")) : [];
    throw new Error(`no ${file} for service ${serviceId} (services: ${services.join(", ") || "none"})`);
  }
  const vm = JSON.parse(readFileSync(file, "utf8")) as Partial<VmFile>;
  if (!vm.kernel || !vm.bootArgs || !vm.image?.disk || !vm.agent?.relaySocket || !vm.memoryMib || !vm.vcpus) {
    throw new Error(`${file}: not an image VM with an agent: ${JSON.stringify(vm)}`);
  }
  return vm as VmFile;
}

/** One GetInfo from the guest agent, through the relay vmctld keeps for the service. */
function getInfo(relaySocket: string, timeoutMs: number): Promise<agent.v1.AgentInfo> {
  const client = new AgentClient(`unix://${relaySocket}`, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) => {
    client.getInfo({}, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, info) => {
      client.close();
      if (err || !info) reject(err ?? new Error("GetInfo: no answer"));
      else resolve(info);
    });
  });
}

/** The agent's two clocks; the workload's is set once it runs (asked again briefly if not yet). */
async function agentTimes(relaySocket: string): Promise<AgentTimes> {
  for (let attempt = 0; ; attempt++) {
    const info = await getInfo(relaySocket, 10_000);
    const start = Number(info.agentStartBoottimeNs);
    const exec = Number(info.workloadExecBoottimeNs);
    if (start > 0 && exec > 0) return { agentStartMs: start / 1e6, workloadExecMs: exec / 1e6 };
    if (attempt >= 50) throw new Error(`agent GetInfo after 5 s: agentStartBoottimeNs=${start}, workloadExecBoottimeNs=${exec}`);
    await sleep(100);
  }
}

const DURATION_UNIT_MS: Readonly<Record<string, number>> = { ns: 1e-6, "µs": 1e-3, us: 1e-3, ms: 1, s: 1000 };

/** The agent's "serving on vsock port N (<Rust Duration> after start)" in the VM's console.log. */
function servingAfterStartMs(serviceId: string): number | undefined {
  const file = join(STATE_DIR, "services", serviceId, "console.log");
  const text = existsSync(file) ? readFileSync(file, "utf8") : "";
  const m = /serving on vsock port \d+ \(([\d.]+)(ns|µs|us|ms|s) after start\)/.exec(text);
  return m ? Number(m[1]) * (DURATION_UNIT_MS[m[2] as string] ?? Number.NaN) : undefined;
}

function findQemu(): string {
  const qemu = ["/usr/bin/qemu-system-x86_64", "/usr/local/bin/qemu-system-x86_64"].find((p) => existsSync(p));
  if (!qemu) throw new Error("qemu-system-x86_64 not found in L1 (the host's /usr/bin)");
  return qemu;
}

/**
 * The peer's kernel command line: the kernel words vmctld gave the VM (up to the agent's
 * `rdinit=/init`, which, with its own arguments, is what the peer replaces by `init=`),
 * with `reboot=t` for `reboot=k` (QEMU microvm has no i8042 to reset through).
 */
export function peerBootArgs(vmBootArgs: string, workload: readonly string[]): string {
  const words = vmBootArgs.split(/\s+/).filter(Boolean);
  const end = words.indexOf("rdinit=/init");
  const kernelWords = (end < 0 ? words : words.slice(0, end)).filter((w) => !w.startsWith("reboot=") && !w.startsWith("init="));
  return [...kernelWords, "reboot=t", ...workload].join(" ");
}

/**
 * QEMU microvm with its RTC and qboot (the strongest microvm peer, bench/l1/nested-boot.ts),
 * and `acpi=off`: with ACPI on, QEMU describes its virtio-mmio devices in ACPI tables only,
 * and this kernel (CONFIG_ACPI=n) finds them through `virtio_mmio.device=` on its command
 * line, which QEMU adds only without ACPI.
 */
function qemuArgs(vm: VmFile, workload: readonly string[]): string[] {
  return [
    "-M", "microvm,rtc=on,acpi=off", "-bios", "qboot.rom",
    "-accel", "kvm",
    "-cpu", "host",
    "-m", String(vm.memoryMib),
    "-smp", String(vm.vcpus),
    "-nodefaults", "-no-user-config", "-nographic",
    "-serial", "stdio",
    "-no-reboot",
    "-kernel", vm.kernel,
    "-append", peerBootArgs(vm.bootArgs, workload),
    "-drive", `id=rootfs,file=${vm.image.disk},format=raw,if=none,readonly=on`,
    "-device", "virtio-blk-device,drive=rootfs",
  ];
}

/** One peer boot: spawn → QEMU gone. A panic (no init, a failed mount) is an error, not a time. */
async function qemuBoot(qemu: string, vm: VmFile, workload: readonly string[]): Promise<Finished> {
  const r = await runTimed(qemu, qemuArgs(vm, workload), 90_000);
  if (r.code !== 0 || /Kernel panic|not syncing/.test(r.stdout)) {
    throw new Error(`QEMU exited ${r.code} after ${Math.round(r.ms)} ms: ${r.stderr.slice(-2000)}\nconsole:\n${r.stdout.slice(-3000)}`);
  }
  return r;
}

/**
 * The peer's warm-up (unmeasured): QEMU and qboot come over 9p on first use, and its
 * workload says it ran (the measured boots print nothing). Returns its console.
 */
async function peerWarmup(qemu: string, vm: VmFile): Promise<string> {
  const check = await qemuBoot(qemu, vm, PEER_WORKLOAD_CHECKED);
  if (!check.stdout.includes("vmctl-bench-peer-ran")) throw new Error(`the peer's workload did not run; console:\n${check.stdout.slice(-3000)}`);
  return check.stdout.slice(-4000);
}

/** Exec'd `true` through vmctld, to its end: the round trip (ms). */
async function execOnce(client: VmctlClient, service: string): Promise<number> {
  const started = performance.now();
  const result = await execToEnd(await client.exec(service, { args: ["true"] }));
  const ms = performance.now() - started;
  if (result.code !== 0) throw new Error(`exec true in ${service}: exit ${result.code} ${result.signal ?? ""} ${Buffer.from(result.stderr).toString()}`);
  return ms;
}

/** The oci service: a busybox rootfs sleeping, the oci target by default. Its failure is recorded, not fatal. */
async function startOci(client: VmctlClient): Promise<{ id?: string; error?: string }> {
  try {
    const id = (await cli(["run", "-d", "--name", "bench-oci", ociRootfs as string, "--", "sleep", "600"], 60_000)).stdout.trim();
    await execOnce(client, id); // a first exec (unmeasured) shows whether oci exec works at all
    return { id };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

interface ExecSamples {
  microvm: number[];
  oci: number[];
  ociError?: string;
}

/** EXEC_N exec round trips into each service, interleaved (drift hits both); one unmeasured each first. */
async function execRound(client: VmctlClient, vmId: string, ociId: string | undefined): Promise<ExecSamples> {
  const out: ExecSamples = { microvm: [], oci: [] };
  await execOnce(client, vmId);
  if (ociId) await execOnce(client, ociId);
  for (let i = 0; i < EXEC_N; i++) {
    out.microvm.push(await execOnce(client, vmId));
    if (!ociId || out.ociError) continue;
    try {
      out.oci.push(await execOnce(client, ociId));
    } catch (err) {
      out.ociError = (err as Error).message;
    }
  }
  return out;
}

/** vmctl run --rm and the peer's boot, in an order that alternates with the round. */
async function bootPair(round: number, qemu: string, vm: VmFile): Promise<{ cliRunMs: number; qemuMs: number }> {
  const runCli = async (): Promise<number> => (await cli(["run", "--rm", "--target", "microvm", "default", "--", "true"])).ms;
  const runQemu = async (): Promise<number> => (await qemuBoot(qemu, vm, PEER_WORKLOAD)).ms;
  if (round % 2 === 0) {
    const cliRunMs = await runCli();
    return { cliRunMs, qemuMs: await runQemu() };
  }
  const qemuMs = await runQemu();
  return { cliRunMs: await runCli(), qemuMs };
}

/** A detached image VM: its agent's clocks, the exec round trips, then removed. */
async function detachedRound(client: VmctlClient, name: string, ociId: string | undefined): Promise<{ vm: VmFile; detachMs: number; agent: AgentTimes; exec: ExecSamples; rmMs: number }> {
  const detached = await cli(["run", "-d", "--name", name, "--target", "microvm", "default", "--", "sleep", "600"]);
  const id = detached.stdout.trim().split("\n").pop() ?? "";
  const vm = readVmFile(id);
  const clocks = await agentTimes(vm.agent.relaySocket);
  const serving = servingAfterStartMs(id);
  const agentClocks = serving === undefined ? clocks : { ...clocks, servingAfterStartMs: serving };
  const exec = await execRound(client, id, ociId);
  const rmMs = (await cli(["rm", "-f", id], 60_000)).ms;
  return { vm, detachMs: detached.ms, agent: agentClocks, exec, rmMs };
}

async function main(): Promise<L1Output> {
  const qemu = findQemu();
  const qemuVersion = spawnSync(qemu, ["--version"], { encoding: "utf8" }).stdout.split("\n")[0] ?? "";
  progress("starting vmctld");
  const daemon = await startDaemon();
  const client = connect(SOCKET);
  let ociId: string | undefined;
  try {
    progress(`vmctld serving after ${Math.round(daemon.startMs)} ms; warm-up run (prepares the default image)`);
    const warmup = await cli(["run", "--rm", "--target", "microvm", "default", "--", "true"], 300_000);
    const oci = await startOci(client);
    ociId = oci.id;
    progress(oci.error ? `oci service/exec FAILED: ${oci.error.slice(0, 300)}` : `oci service ${oci.id} up`);
    let ociError = oci.error;
    const rounds: Round[] = [];
    let firstVm: VmFile | undefined;
    let warmupQemuConsole = "";
    for (let i = 0; i < RUNS; i++) {
      const d = await detachedRound(client, `bench-vm-${i}`, ociError ? undefined : oci.id);
      if (!firstVm) {
        firstVm = d.vm;
        warmupQemuConsole = await peerWarmup(qemu, d.vm);
      }
      ociError ??= d.exec.ociError;
      const boots = await bootPair(i, qemu, d.vm);
      const cliPsMs = (await cli(["ps"], 60_000)).ms;
      rounds.push({ ...boots, detachMs: d.detachMs, agent: d.agent, execMicrovmMs: d.exec.microvm, execOciMs: d.exec.oci, rmMs: d.rmMs, cliPsMs });
      progress(`round ${i + 1}/${RUNS}: run --rm ${Math.round(boots.cliRunMs)} ms, qemu ${Math.round(boots.qemuMs)} ms, agent→exec ${(d.agent.workloadExecMs - d.agent.agentStartMs).toFixed(1)} ms`);
    }
    if (!firstVm) throw new Error("no rounds run");
    return {
      qemu: { path: qemu, version: qemuVersion, args: qemuArgs(firstVm, PEER_WORKLOAD) },
      vm: firstVm,
      kernelMatches: realpathSync(firstVm.kernel) === realpathSync(expectedKernel as string),
      l1Kernel: spawnSync("uname", ["-r"], { encoding: "utf8" }).stdout.trim(),
      daemonStartMs: daemon.startMs,
      warmupRunMs: warmup.ms,
      warmupQemuConsole,
      ...(ociError ? { ociError } : {}),
      rounds,
    };
  } finally {
    if (ociId) await cli(["rm", "-f", ociId], 60_000).catch((err: Error) => progress(`rm of the oci service failed: ${err.message}`));
    client.close();
    await daemon.stop();
  }
}

try {
  console.log(JSON.stringify(await main()));
  process.exit(0);
} catch (err) {
  progress(`FAILED: ${(err as Error).stack ?? String(err)}`.slice(0, 2000));
  console.error((err as Error).stack ?? String(err));
  process.exit(1);
}
