import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

/** Wall-clock milliseconds of `command args`, which must exit 0 (else the rejection carries its stderr). */
export function timeCommand(command: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const start = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, [...args], { stdio: ["ignore", "ignore", "pipe"], env });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.once("error", reject);
    child.once("close", (code) => (code === 0 ? resolve(performance.now() - start) : reject(new Error(`${command} ${args.join(" ")}: exit ${code}: ${stderr.trim()}`))));
  });
}

/** Wall-clock milliseconds to spawn `/bin/true` and see it exit: the baseline peer. */
export async function spawnTrueMs(): Promise<number> {
  const start = performance.now();
  await new Promise<void>((resolve, reject) => {
    const child = spawn("/bin/true", { stdio: "ignore" });
    child.once("error", reject);
    child.once("exit", () => resolve());
  });
  return performance.now() - start;
}

/**
 * CPU time a live process has used so far, in milliseconds, summed over its threads
 * (from /proc/PID/task/TID/schedstat, which counts in nanoseconds).
 */
export function processCpuMs(pid: number): number {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const fields = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ");
    ns += Number(fields[0]);
  }
  return ns / 1e6;
}

/** Resident set size of a live process in MiB (VmRSS from /proc/PID/status). */
export function processRssMib(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!match) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]) / 1024;
}
