// The vmctl-vmm process of one service: started detached (its own session, output to a
// file) so it outlives the orchestrator, and known afterwards by pid + start time from
// /proc, so a reused pid is never mistaken for ours.
import { spawn } from "node:child_process";
import { closeSync, openSync, readFileSync, readdirSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { isAlive, startTimeOf, type ProcessRef } from "@vmctl/core/target-kit";

export { isAlive, type ProcessRef } from "@vmctl/core/target-kit";

/** Live vmctl-vmm processes whose API socket is `socketPath` (for a crash between spawn and recording the pid). */
export function vmmsServing(socketPath: string): ProcessRef[] {
  const found: ProcessRef[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    try {
      const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      const i = argv.indexOf("--api-sock");
      if (i < 0 || argv[i + 1] !== socketPath) continue;
      const startTime = startTimeOf(pid);
      if (startTime !== undefined) found.push({ pid, startTime });
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

export interface SpawnOptions {
  readonly binary: string;
  readonly socketPath: string;
  readonly vmId: string;
  /** The VMM's stdout and stderr go here (appended). */
  readonly logFile: string;
  readonly cwd: string;
  /** Owner labels, exported to the VMM's environment (VMCTL_LABEL_<n>=key=value) for reapers. */
  readonly labels: Readonly<Record<string, string>>;
}

/** Starts vmctl-vmm in its own session; resolves once it has a pid and a start time. */
export async function spawnDetached(options: SpawnOptions): Promise<ProcessRef> {
  const out = openSync(options.logFile, "a", 0o600);
  const labels = Object.fromEntries(Object.entries(options.labels).map(([k, v], i) => [`VMCTL_LABEL_${i}`, `${k}=${v}`]));
  let child;
  try {
    child = spawn(options.binary, ["--api-sock", options.socketPath, "--id", options.vmId], {
      detached: true,
      stdio: ["ignore", out, out],
      cwd: options.cwd,
      env: { ...process.env, ...labels },
    });
  } finally {
    closeSync(out);
  }
  const spawned = new Promise<void>((resolve, reject) => {
    child.once("spawn", resolve);
    child.once("error", reject);
  });
  child.unref();
  await spawned;
  const pid = child.pid as number;
  // The start time exists from fork on; a VMM that already died has none.
  const startTime = startTimeOf(pid) ?? "";
  return { pid, startTime };
}

/** SIGTERM (the VMM force-stops a running VM and exits), then SIGKILL after `graceMs`. Resolves once it is gone. */
export async function terminate(ref: ProcessRef, graceMs = 2000): Promise<void> {
  if (!isAlive(ref)) return;
  signal(ref, "SIGTERM");
  if (await goneWithin(ref, graceMs)) return;
  signal(ref, "SIGKILL");
  await goneWithin(ref, 10_000);
}

async function goneWithin(ref: ProcessRef, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (let delay = 2; isAlive(ref); delay = Math.min(delay * 2, 50)) {
    if (Date.now() >= deadline) return false;
    await sleep(delay);
  }
  return true;
}

function signal(ref: ProcessRef, name: NodeJS.Signals): void {
  if (!isAlive(ref)) return;
  try {
    process.kill(ref.pid, name);
  } catch {
    // gone meanwhile
  }
}
