import { readFileSync } from "node:fs";

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
