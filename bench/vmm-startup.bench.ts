// vmctl-vmm process start -> API ready (first GetInfo answered): wall and CPU ms,
// against a plain `/bin/true` spawn measured in the same run; and what the idle VMM
// costs at that moment: minor page faults, private memory, threads.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, watch } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { VmmClient } from "@vmctl/proto";
import { median, report } from "./lib/report.js";
import { processCpuMs, spawnTrueMs } from "./lib/process.js";
import { requireVmmBinary } from "@vmctl/vmm-client";

const RUNS = 15;

async function getInfoWhenReady(socket: string, deadlineMs: number): Promise<void> {
  for (;;) {
    const client = new VmmClient(`unix://${socket}`, grpc.credentials.createInsecure());
    try {
      await new Promise<void>((resolve, reject) =>
        client.getInfo({}, new grpc.Metadata(), { deadline: Date.now() + 1000 }, (err) => (err ? reject(err) : resolve())),
      );
      return;
    } catch (err) {
      if (performance.now() > deadlineMs) throw err;
      await new Promise((r) => setTimeout(r, 0.2));
    } finally {
      client.close();
    }
  }
}

/**
 * Minor page faults and threads of a live process (/proc/PID/stat). The count includes
 * the faults of the forked child before it execs the binary (Node's side of the spawn,
 * the same for any program spawned this way).
 */
function faultsAndThreads(pid: number): { minflt: number; threads: number } {
  const text = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = text.slice(text.lastIndexOf(")") + 2).split(" "); // f[0] is field 3 (state)
  return { minflt: Number(f[7]), threads: Number(f[17]) };
}

/**
 * Private memory of a live process in kB: its anonymous pages (heap, stacks, and data
 * pages it wrote), from /proc/PID/smaps_rollup. Before Start there is no guest memory, so
 * all of it is the VMM's own. Not Private_Dirty: that also counts page-cache pages of a
 * freshly built binary not yet written back, which are shared and no cost of the VMM.
 */
function anonymousKb(pid: number): number {
  const match = /^Anonymous:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"));
  if (!match) throw new Error(`no Anonymous in smaps_rollup of pid ${pid}`);
  return Number(match[1]);
}

/**
 * Spawn -> the API socket accepting connections (it appears under its name only once
 * listening), seen through inotify: the VMM's own start-up, without the gRPC client's
 * connection set-up that the GetInfo figure also carries.
 */
async function oneStartToListening(binary: string): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "vmctl-bench-"));
  const socket = join(dir, "api.sock");
  const watcher = watch(dir);
  const listening = new Promise<number>((resolve) => {
    watcher.on("change", () => {
      if (existsSync(socket)) resolve(performance.now());
    });
  });
  const start = performance.now();
  const child = spawn(binary, ["--api-sock", socket], { stdio: "ignore" });
  try {
    const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error("API socket never appeared")), 10_000).unref());
    return (await Promise.race([listening, timeout])) - start;
  } finally {
    watcher.close();
    child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
}

interface StartSample {
  wallMs: number;
  cpuMs: number;
  minflt: number;
  threads: number;
  privateKb: number;
}

async function oneStart(binary: string): Promise<StartSample> {
  const dir = mkdtempSync(join(tmpdir(), "vmctl-bench-"));
  const socket = join(dir, "api.sock");
  const start = performance.now();
  const child = spawn(binary, ["--api-sock", socket], { stdio: "ignore" });
  try {
    await getInfoWhenReady(socket, start + 10_000);
    const wallMs = performance.now() - start;
    const pid = child.pid as number;
    const cpuMs = processCpuMs(pid);
    const { minflt, threads } = faultsAndThreads(pid);
    return { wallMs, cpuMs, minflt, threads, privateKb: anonymousKb(pid) };
  } finally {
    child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
}

const binary = requireVmmBinary();
const wall: number[] = [];
const cpu: number[] = [];
const faults: number[] = [];
const threads: number[] = [];
const privateKb: number[] = [];
const listening: number[] = [];
const baseline: number[] = [];
for (let i = 0; i < RUNS; i++) {
  listening.push(await oneStartToListening(binary));
  const run = await oneStart(binary);
  wall.push(run.wallMs);
  cpu.push(run.cpuMs);
  faults.push(run.minflt);
  threads.push(run.threads);
  privateKb.push(run.privateKb);
  baseline.push(await spawnTrueMs());
}
report({
  name: "vmm_start_to_api_ready_wall",
  unit: "ms",
  value: median(wall),
  baseline: median(baseline),
  baselineName: "spawn /bin/true",
  runs: RUNS,
  target: "<= 8 ms",
});
report({
  name: "vmm_start_to_api_listening_wall",
  unit: "ms",
  value: median(listening),
  baseline: median(baseline),
  baselineName: "spawn /bin/true",
  runs: RUNS,
  conditions: { measures: "spawn -> API socket accepting (inotify); no gRPC client in the loop" },
});
report({ name: "vmm_start_to_api_ready_cpu", unit: "ms", value: median(cpu), runs: RUNS, target: "<= 4 ms" });
report({
  name: "vmm_minor_faults_at_api_ready",
  unit: "faults",
  value: median(faults),
  runs: RUNS,
  target: "<= 140",
  conditions: { includes: "the spawned child's faults before exec (Node's fork), as for any program spawned so" },
});
report({
  name: "vmm_idle_private_memory_at_api_ready",
  unit: "kB",
  value: median(privateKb),
  runs: RUNS,
  target: "<= 400 kB",
  conditions: { measures: "Anonymous of /proc/PID/smaps_rollup; no guest memory exists before Start" },
});
report({ name: "vmm_threads_at_api_ready", unit: "threads", value: median(threads), runs: RUNS });
