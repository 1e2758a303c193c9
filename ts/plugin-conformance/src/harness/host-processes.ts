// Host process facts from /proc: which processes a ledger names, whether they still
// live, and who still holds files in a directory. Linux only (as the targets are).
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import type { OwnedResource } from "@vmctl/core/contract";
import { startTimeOf } from "@vmctl/core/target-kit";

/** A process a plugin recorded: kind "process" with a pid as its key or as `data.pid`. */
export interface RecordedProcess {
  readonly pid: number;
  /** `data.startTime` when the plugin recorded one (field 22 of /proc/PID/stat): guards against pid reuse. */
  readonly startTime?: string;
  readonly resource: string;
}

export function recordedProcesses(resources: readonly OwnedResource[]): RecordedProcess[] {
  const found = new Map<number, RecordedProcess>();
  for (const r of resources) {
    if (r.kind !== "process") continue;
    const data = (typeof r.data === "object" && r.data !== null && !Array.isArray(r.data) ? r.data : {}) as Record<string, unknown>;
    const pid = /^\d+$/.test(r.key) ? Number(r.key) : typeof data.pid === "number" ? data.pid : undefined;
    if (pid === undefined || !Number.isInteger(pid) || pid <= 1 || pid === process.pid) continue;
    const startTime = typeof data.startTime === "string" ? data.startTime : undefined;
    found.set(pid, { pid, resource: `${r.kind} ${r.key}`, ...(startTime === undefined ? {} : { startTime }) });
  }
  return [...found.values()];
}

/** The recorded process still runs (same start time, when one was recorded). */
export function isAlive(p: RecordedProcess): boolean {
  const start = startTimeOf(p.pid);
  return start !== undefined && (p.startTime === undefined || p.startTime === start);
}

/** Live processes whose working directory or an open file lies under `dir`: pid → what. */
export function holdersOf(dir: string): Map<number, string> {
  const prefix = dir.endsWith("/") ? dir : `${dir}/`;
  const under = (p: string): boolean => p === dir || p.startsWith(prefix);
  const holders = new Map<number, string>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const pid = Number(entry);
    if (startTimeOf(pid) === undefined) continue;
    try {
      const cwd = readlinkSync(`/proc/${pid}/cwd`);
      if (under(cwd)) {
        holders.set(pid, `${commOf(pid)} (cwd ${cwd})`);
        continue;
      }
      for (const fd of readdirSync(`/proc/${pid}/fd`)) {
        const target = safeReadlink(`/proc/${pid}/fd/${fd}`);
        if (target !== undefined && under(target.replace(/ \(deleted\)$/, ""))) {
          holders.set(pid, `${commOf(pid)} (open ${target})`);
          break;
        }
      }
    } catch {
      // gone meanwhile, or not ours to look at
    }
  }
  return holders;
}

/** SIGKILLs a process and, when it leads one, its process group. The kit's last resort after a leaky plugin. */
export function killHard(pid: number): void {
  for (const target of [-pid, pid]) {
    try {
      process.kill(target, "SIGKILL");
    } catch {
      // not a group leader, or gone
    }
  }
}

function commOf(pid: number): string {
  try {
    return `${readFileSync(`/proc/${pid}/comm`, "utf8").trim()}[${pid}]`;
  } catch {
    return `pid ${pid}`;
  }
}

function safeReadlink(path: string): string | undefined {
  try {
    return readlinkSync(path);
  } catch {
    return undefined;
  }
}

/** Live (not zombie) host processes whose command line mentions `needle`. */
export function processesMentioning(needle: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const pid = Number(entry);
    if (startTimeOf(pid) === undefined) continue;
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(needle)) pids.push(pid);
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}
