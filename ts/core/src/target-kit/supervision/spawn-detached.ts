import { spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { startTimeOf, type ProcessRef } from "../process.js";

export interface DetachedOptions {
  /** stdout and stderr are appended here (created 0600). */
  readonly logFile: string;
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
}

/** A process started in its own session, and how it ended if it did while this process watched. */
export interface DetachedProcess extends ProcessRef {
  /** The exit code (null: a signal), once it has exited; undefined while it runs or unseen. */
  exitCode(): number | null | undefined;
}

/**
 * Starts `command` in its own session with output to `logFile`, so it outlives this
 * process (a VMM, vmctld started by the CLI); resolves once it has a pid and a start
 * time, rejects when it could not be started at all (ENOENT, EACCES).
 */
export async function spawnDetached(command: string, args: readonly string[], options: DetachedOptions): Promise<DetachedProcess> {
  const out = openSync(options.logFile, "a", 0o600);
  let child;
  try {
    child = spawn(command, args, { detached: true, stdio: ["ignore", out, out], cwd: options.cwd, env: options.env ?? process.env });
  } finally {
    closeSync(out);
  }
  let exit: number | null | undefined;
  child.once("exit", (code) => (exit = code));
  const spawned = new Promise<void>((resolve, reject) => {
    child.once("spawn", resolve);
    child.once("error", reject);
  });
  child.unref();
  await spawned;
  const pid = child.pid as number;
  // The start time exists from fork on; a process that already died has none.
  return { pid, startTime: startTimeOf(pid) ?? "", exitCode: () => exit };
}
