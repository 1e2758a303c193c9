// The vmctl-vmm processes running on this machine that `belongs(pid)` claims: how the
// L1 scripts check that a case left no VMM behind. Plain JavaScript (see boot-test-guest.mjs).
import { readdirSync, readFileSync, readlinkSync } from "node:fs";

/** The parent pid of `pid`, from /proc/<pid>/stat (the field after the command's ")"). */
export function parentOf(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
}

/** The command line of `pid`, its arguments joined by NUL. */
export function commandLineOf(pid) {
  return readFileSync(`/proc/${pid}/cmdline`, "utf8");
}

export function liveVmms(belongs) {
  const pids = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readlinkSync(`/proc/${entry}/exe`).endsWith("/vmctl-vmm") && belongs(Number(entry))) pids.push(Number(entry));
    } catch {
      // Gone, or a kernel thread.
    }
  }
  return pids;
}
