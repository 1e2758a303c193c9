// The shim: a session leader (detached from the orchestrator) that runs lxc-execute in
// the foreground with output to files, then records its exit status. lxc-execute's status
// IS the workload's (init.lxc passes it through), and only a waiting parent learns it:
// Node cannot become a subreaper, so a small sh that outlives the orchestrator keeps it.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { VmctlError } from "@vmctl/core/contract";
import { startTimeOf, type ProcessRef } from "@vmctl/core/target-kit";
import type { ServiceLayout } from "./layout.js";

/** argv[0] of the shim, so it can be recognised in /proc (and by a reaper). */
export const SHIM_NAME = "vmctl-lxc-shim";

/** `sh -c SHIM vmctl-lxc-shim PIDFILE STDOUT STDERR EXITFILE COMMAND...` */
const SHIM = [
  'pidf=$1 out=$2 err=$3 exitf=$4; shift 4',
  'echo $$ > "$pidf.tmp" && mv -f "$pidf.tmp" "$pidf"',
  '"$@" </dev/null >>"$out" 2>>"$err"',
  'echo $? > "$exitf.tmp" && mv -f "$exitf.tmp" "$exitf"',
].join("\n");

/** Spawns the shim for `command` as its own session; returns its pid and start time. */
export function spawnShim(layout: ServiceLayout, command: readonly string[]): ProcessRef {
  const child = spawn(
    "/bin/sh",
    ["-c", SHIM, SHIM_NAME, layout.shimPidFile, layout.stdoutFile, layout.stderrFile, layout.exitFile, ...command],
    { detached: true, stdio: "ignore", cwd: layout.runDir },
  );
  child.on("error", () => undefined); // reported below: no pid
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new VmctlError("INTERNAL", "could not spawn the lxc shim (/bin/sh)");
  // The shim cannot have exited yet: it waits for lxc-execute, which takes milliseconds at least.
  return { pid, startTime: startTimeOf(pid) ?? "" };
}

/** pid is a live (not zombie) shim of container `name`: guards against pid reuse. */
export function isShim(pid: number, name: string): boolean {
  if (startTimeOf(pid) === undefined) return false;
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    return argv[3] === SHIM_NAME && argv.includes(name);
  } catch {
    return false;
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

/**
 * The container init's host pid, when `initPid` (from the hook's file) really is the
 * init of the container run by this shim: shim → lxc-execute → init. A reused pid fails this.
 */
export function verifiedInit(initPid: number, shimPid: number): boolean {
  const monitor = parentOf(initPid);
  return monitor !== undefined && startTimeOf(initPid) !== undefined && parentOf(monitor) === shimPid;
}
