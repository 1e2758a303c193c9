// Single-flight daemon start: of several CLIs finding no daemon at once, one starts it
// and the others wait for it; and none starts a second one while a daemon is starting
// (its <state-dir>/vmctld.pid names a live vmctld).
import { closeSync, openSync, readFileSync, readlinkSync, realpathSync, rmSync, statSync, writeSync } from "node:fs";
import { join } from "node:path";
import { PID_FILE } from "@vmctl/core/contract";

const LOCK_FILE = "vmctld.start.lock";

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

function pidIn(path: string): number | undefined {
  try {
    const pid = Number(readFileSync(path, "utf8").trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** True when the state directory's pid file names a live vmctld (one that is starting, or serving). */
export function daemonStarting(stateDir: string): boolean {
  const pid = pidIn(join(stateDir, PID_FILE));
  if (pid === undefined || !isAlive(pid)) return false;
  try {
    // A pid reused since by anything but a Node process is not our daemon.
    return readlinkSync(`/proc/${pid}/exe`) === realpathSync(process.execPath);
  } catch {
    return false;
  }
}

/**
 * Takes the start lock: a release function if this CLI should start the daemon,
 * undefined if another live CLI holds it (then wait for its daemon). A lock left by a
 * CLI that died, or older than `staleMs`, is taken over.
 */
export function tryStartLock(stateDir: string, staleMs: number): (() => void) | undefined {
  const path = join(stateDir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, "wx", 0o600);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return () => {
        if (pidIn(path) === process.pid) rmSync(path, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const holder = pidIn(path);
      let age = 0;
      try {
        age = Date.now() - statSync(path).mtimeMs;
      } catch {
        continue; // released meanwhile: try again
      }
      if (holder !== undefined && isAlive(holder) && age < staleMs) return undefined;
      rmSync(path, { force: true });
    }
  }
  return undefined;
}
