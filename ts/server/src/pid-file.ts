// <state-dir>/vmctld.pid: written the moment a daemon begins to start, before it loads
// plugins and recovers state (which takes a while), so a CLI that finds no answer on
// the socket yet can tell "starting" from "not running" and wait instead of launching a
// second daemon. Removed at shutdown, only by the daemon it names.
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_STATE_DIR, PID_FILE } from "@vmctl/core/contract";
import { pidFileOwner } from "@vmctl/core/target-kit";

/**
 * The state directory vmctld's arguments name (as parseDaemonArgs reads them), found
 * before anything heavy is loaded so the pid file can be written at once.
 */
export function stateDirOf(argv: readonly string[], env: NodeJS.ProcessEnv): string {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "--state-dir" && i + 1 < argv.length) return argv[i + 1] as string;
    if (arg.startsWith("--state-dir=")) return arg.slice("--state-dir=".length);
  }
  return env.VMCTL_STATE_DIR || DEFAULT_STATE_DIR;
}

/** Writes it; undefined when it cannot be (advisory only: the state store reports a state dir it cannot use, precisely). */
export function writePidFile(stateDir: string): string | undefined {
  const path = join(stateDir, PID_FILE);
  const temp = `${path}.${process.pid}.tmp`;
  // Another daemon's, still alive: leave it (this one will find the state dir in use and exit).
  const owner = pidFileOwner(path);
  if (owner !== undefined && owner !== process.pid) return undefined;
  try {
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    writeFileSync(temp, `${process.pid}\n`, { mode: 0o600 });
    renameSync(temp, path);
    return path;
  } catch {
    rmSync(temp, { force: true });
    return undefined;
  }
}

/** Removes the pid file if it still names this process (a daemon that lost a race must not remove the winner's). */
export function removePidFile(path: string | undefined): void {
  if (path === undefined) return;
  try {
    if (readFileSync(path, "utf8").trim() === String(process.pid)) rmSync(path, { force: true });
  } catch {
    // already gone
  }
}
