import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { daemonStarting, startLockHeld, tryStartLock } from "./start-lock.js";

function stateDir(): string {
  return mkdtempSync(join(tmpdir(), "vmctl-start-lock-"));
}

test("a pid file counts only for the live Node process that wrote it, not for a pid reused since", async (t) => {
  const dir = stateDir();
  const child = spawn(process.execPath, ["-e", "setTimeout(() => {}, 30000)"], { stdio: "ignore" });
  t.teardown(() => {
    child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });
  await new Promise((r) => child.once("spawn", r));
  const pidFile = join(dir, "vmctld.pid");
  writeFileSync(pidFile, `${child.pid}\n`);
  t.true(daemonStarting(dir), "written after the process started: its own");
  // The same pid in a file written long before the process started: a reused pid.
  const anHourAgo = Date.now() / 1000 - 3600;
  utimesSync(pidFile, anHourAgo, anHourAgo);
  t.false(daemonStarting(dir));
  writeFileSync(pidFile, `${process.pid}\n`);
  t.false(daemonStarting(dir), "never this CLI itself");
  writeFileSync(pidFile, "not a pid\n");
  t.false(daemonStarting(dir));
});

test("the start lock: one holder at a time; a dead holder's lock is taken over", (t) => {
  const dir = stateDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const release = tryStartLock(dir, 30_000);
  t.truthy(release);
  // This process holds it; as seen from itself it is not "another CLI".
  t.false(startLockHeld(dir, 30_000));
  release?.();
  // A lock left by a process that is gone (pid 2^22 + 1 is above pid_max's default).
  writeFileSync(join(dir, "vmctld.start.lock"), `${2 ** 22 + 1}\n`);
  const taken = tryStartLock(dir, 30_000);
  t.truthy(taken, "a dead holder's lock is taken over");
  taken?.();
});
