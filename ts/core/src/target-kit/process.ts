import { readdirSync, readFileSync, statSync } from "node:fs";
import { waitFor } from "./supervision/wait.js";

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

/**
 * True while `pid` exists and is not a zombie: a killed process nobody has reaped yet
 * (its parent died, and init reaps it, which can take seconds on a busy host) runs no
 * more, though `kill(pid, 0)` still finds it.
 */
export function pidRunning(pid: number): boolean {
  if (!pidAlive(pid)) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    return state !== "Z" && state !== "X";
  } catch {
    return false; // gone meanwhile
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

/**
 * Live (not zombie) members of process group `pgid`, from /proc (field 5 of
 * /proc/PID/stat). `kill(-pgid, 0)` is not enough: it succeeds while a killed member
 * is a zombie nobody has reaped yet (a child of a dead wrapper waits for init), which
 * can take seconds.
 */
export function processGroupMembers(pgid: number): number[] {
  try {
    process.kill(-pgid, 0);
  } catch (err) {
    // No process at all in the group (zombies included): nothing to scan for.
    if ((err as NodeJS.ErrnoException).code === "ESRCH") return [];
  }
  const members: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (entry.charCodeAt(0) > 57) continue; // not a pid ("self", "sys"...)
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      // fields[0] is field 3 (state), fields[2] field 5 (the process group).
      if (Number(fields[2]) === pgid && fields[0] !== "Z" && fields[0] !== "X") members.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return members;
}

export interface GroupWaitOptions {
  /** Give up after this long (default 5000 ms); the result then says the group still lives. */
  readonly timeoutMs?: number;
  /** Poll interval (default 25 ms). */
  readonly pollMs?: number;
}

/**
 * Resolves true once no live process is left in process group `pgid` (zombies do not
 * count: they have released everything but their pid), false if some still run after
 * `timeoutMs`. For a target that runs its workload as a group leader (`spawn` with
 * `detached: true`) and kills it with `kill(-pgid, ...)`: the leader can be reaped
 * before the rest of its group has died, so destroy waits for the whole group.
 */
export async function processGroupGone(pgid: number, options: GroupWaitOptions = {}): Promise<boolean> {
  const gone = () => (processGroupMembers(pgid).length === 0 ? true : undefined);
  return (await waitFor(gone, { timeoutMs: options.timeoutMs ?? 5000, pollMs: options.pollMs ?? 25 })) ?? false;
}

/** The command line of a live process, split at NULs; undefined when it is gone or not readable. */
export function argvOf(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
  } catch {
    return undefined;
  }
}

/** The parent pid of a live process, or undefined. */
export function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    return Number.isInteger(ppid) ? ppid : undefined;
  } catch {
    return undefined;
  }
}

/** The direct children of a live process, oldest first (the kernel appends on fork and reparent). */
export function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").split(" ").filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Live (not zombie) processes whose command line `matches`, known by pid + start time. */
export function processesWhere(matches: (argv: readonly string[]) => boolean): ProcessRef[] {
  const found: ProcessRef[] = [];
  for (const entry of readdirSync("/proc")) {
    if (entry.charCodeAt(0) > 57) continue; // not a pid ("self", "sys"...)
    const pid = Number(entry);
    const argv = argvOf(pid);
    if (argv === undefined || !matches(argv)) continue;
    const startTime = startTimeOf(pid);
    if (startTime !== undefined) found.push({ pid, startTime });
  }
  return found;
}
