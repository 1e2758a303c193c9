import { readFileSync, statSync } from "node:fs";

/** A process as a ledger records it. `startTime` is field 22 of /proc/PID/stat (clock ticks since boot). */
export interface ProcessRef {
  readonly pid: number;
  readonly startTime: string;
}

/** The start time of a live (not zombie) process, or undefined. */
export function startTimeOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name may contain spaces and parentheses: fields start after the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // fields[0] is field 3 (state); the start time is field 22.
    if (fields[0] === "Z" || fields[0] === "X") return undefined;
    return fields[19];
  } catch {
    return undefined;
  }
}

/** The recorded process still runs: same pid, same start time (so a reused pid is never ours), not a zombie. */
export function isAlive(ref: ProcessRef): boolean {
  return startTimeOf(ref.pid) === ref.startTime;
}

/** A process with this pid exists (perhaps another user's: EPERM still means it exists). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** USER_HZ: the unit of /proc/PID/stat's start time on every Linux architecture vmctl runs on. */
const TICKS_PER_SECOND = 100;

/** When a live process started, in ms since the epoch, or undefined. */
export function startedAtMs(pid: number): number | undefined {
  const ticks = Number(startTimeOf(pid));
  if (!Number.isFinite(ticks)) return undefined;
  try {
    const boot = Number(/^btime (\d+)$/m.exec(readFileSync("/proc/stat", "utf8"))?.[1]);
    return Number.isFinite(boot) ? boot * 1000 + (ticks * 1000) / TICKS_PER_SECOND : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The live process a pid file names, if it is the one that wrote it: it started before
 * the file was written (a second of slack for tick rounding). A pid reused since its
 * writer died started later, and is not the owner. Undefined when there is none.
 */
export function pidFileOwner(path: string): number | undefined {
  try {
    const pid = Number(readFileSync(path, "utf8").trim());
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    const started = startedAtMs(pid);
    if (started === undefined || started > statSync(path).mtimeMs + 1000) return undefined;
    return pid;
  } catch {
    return undefined;
  }
}
