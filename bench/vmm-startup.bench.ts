// vmctl-vmm process start -> API ready (first GetInfo answered): wall and CPU ms,
// against a plain `/bin/true` spawn measured in the same run.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
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

async function oneStart(binary: string): Promise<{ wallMs: number; cpuMs: number }> {
  const dir = mkdtempSync(join(tmpdir(), "vmctl-bench-"));
  const socket = join(dir, "api.sock");
  const start = performance.now();
  const child = spawn(binary, ["--api-sock", socket], { stdio: "ignore" });
  try {
    await getInfoWhenReady(socket, start + 10_000);
    const wallMs = performance.now() - start;
    const cpuMs = processCpuMs(child.pid as number);
    return { wallMs, cpuMs };
  } finally {
    child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
}

const binary = requireVmmBinary();
const wall: number[] = [];
const cpu: number[] = [];
const baseline: number[] = [];
for (let i = 0; i < RUNS; i++) {
  const run = await oneStart(binary);
  wall.push(run.wallMs);
  cpu.push(run.cpuMs);
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
report({ name: "vmm_start_to_api_ready_cpu", unit: "ms", value: median(cpu), runs: RUNS, target: "<= 4 ms" });
