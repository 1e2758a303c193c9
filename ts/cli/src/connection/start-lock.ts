// Single-flight daemon start: of several CLIs finding no daemon at once, one starts it
// and the others wait for it; and none starts a second one while a daemon is starting
// (its <state-dir>/vmctld.pid names a live vmctld).
import { linkSync, readFileSync, readlinkSync, realpathSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PID_FILE } from "@vmctl/core/contract";
import { pidAlive, pidFileOwner } from "@vmctl/core/target-kit";

const LOCK_FILE = "vmctld.start.lock";

function pidIn(path: string): number | undefined {
  try {
    const pid = Number(readFileSync(path, "utf8").trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * True when the state directory's pid file names a live vmctld (one that is starting, or
 * serving): a live Node process that started before the file was written. A pid reused
 * since a daemon died (by anything, even this CLI) started after the file and does not count.
 */
export function daemonStarting(stateDir: string): boolean {
  const pid = pidFileOwner(join(stateDir, PID_FILE));
  if (pid === undefined || pid === process.pid) return false;
  try {
    return readlinkSync(`/proc/${pid}/exe`) === realpathSync(process.execPath);
  } catch {
    return false;
  }
}

/** True while another live CLI holds the start lock (it is starting the daemon). */
export function startLockHeld(stateDir: string, staleMs: number): boolean {
  const path = join(stateDir, LOCK_FILE);
  const holder = pidIn(path);
  try {
    return holder !== undefined && holder !== process.pid && pidAlive(holder) && Date.now() - statSync(path).mtimeMs < staleMs;
  } catch {
    return false;
  }
}

function inodeOf(path: string): number | undefined {
  try {
    return statSync(path).ino;
  } catch {
    return undefined;
  }
}

/** Removes `path` if it is still the file that had inode `ino`. */
function removeIfSame(path: string, ino: number | undefined): void {
  if (ino !== undefined && inodeOf(path) === ino) rmSync(path, { force: true });
}

/**
 * Takes the start lock: a release function if this CLI should start the daemon,
 * undefined if another live CLI holds it (then wait for its daemon). The lock file is
 * made whole (pid inside) and then linked into place, so no one ever reads it empty; a
 * lock left by a CLI that died, or older than `staleMs`, is taken over.
 */
export function tryStartLock(stateDir: string, staleMs: number): (() => void) | undefined {
  const path = join(stateDir, LOCK_FILE);
  const mine = `${path}.${process.pid}`;
  writeFileSync(mine, `${process.pid}\n`, { mode: 0o600 });
  try {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        linkSync(mine, path);
        return () => {
          if (pidIn(path) === process.pid) rmSync(path, { force: true });
        };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
        const seen = inodeOf(path);
        if (startLockHeld(stateDir, staleMs)) return undefined;
        // Stale: its holder died. Removed only if it is still the file judged stale (by
        // inode), not a fresh lock another CLI took meanwhile.
        removeIfSame(path, seen);
      }
    }
    return undefined;
  } finally {
    rmSync(mine, { force: true });
  }
}
