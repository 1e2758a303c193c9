// A Docker daemon for tests and benchmarks: the host's when one answers, else ONE private
// dockerd shared by every process that asks (ava runs each test file in its own process,
// concurrently). Used by plugins/docker's tests and bench/orchestrator.bench.ts.
//
// The private daemon lives in PRIVATE_DIR (default /tmp/vmctl-test-dockerd):
//
//   docker.sock      its API socket            data/, exec/   its data and exec roots
//   dockerd.log      its output                dockerd.pid    written by dockerd
//   supervisor.pid   the supervisor's pid      leases/<pid>   one per process using it
//   lock/            mkdir lock: one process at a time decides to start or stop it
//
// Who stops it: a small detached supervisor (this file run as a script) starts dockerd as
// its child, watches the leases, and once no leasing process has been alive for
// IDLE_GRACE_MS it stops dockerd (SIGTERM: containers die with it), unmounts what is
// left and removes everything but dockerd.log. The grace lets the next ava file reuse the daemon
// instead of paying a restart. A test process that is kill -9ed leaves a lease whose pid
// is dead: the supervisor ignores it. So after a run, for a few seconds, the supervisor
// and dockerd (+ its containerd) are still running; then only dockerd.log is left.
// `kill $(cat /tmp/vmctl-test-dockerd/supervisor.pid)` stops it at once, cleanly. If the
// supervisor itself is kill -9ed, its dockerd keeps running and is reused (but no longer
// stopped) until someone kills it (`kill $(cat .../dockerd.pid)`).
//
// The daemon is started with no default bridge and no iptables rules (`--bridge none
// --iptables=false`): it must not change the host's firewall. User-defined bridge
// networks still work (a Linux bridge per network, no NAT). Its containerd namespaces
// are its own, so it never meets another daemon's containers in a shared containerd.
import { spawn, spawnSync } from "node:child_process";
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { request } from "node:http";
import { dirname, join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath, pathToFileURL } from "node:url";
import { argvOf, readIntFile, startTimeOf, terminateChild } from "@vmctl/core/target-kit";

export const PRIVATE_DIR = process.env.VMCTL_TEST_DOCKERD_DIR ?? "/tmp/vmctl-test-dockerd";
const DEFAULT_SOCKET = "/var/run/docker.sock";
const IDLE_GRACE_MS = 5_000;
const START_TIMEOUT_MS = 60_000;
const LOCK_TIMEOUT_MS = 60_000;
const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

export interface DockerDaemon {
  /** Path of the API socket. */
  readonly socket: string;
  /** The same as DOCKER_HOST: `unix://<socket>`. */
  readonly host: string;
  /** Environment for the docker CLI: process.env with DOCKER_HOST set. */
  readonly env: NodeJS.ProcessEnv;
  /** True when this is the private daemon (started here or by another test process). */
  readonly private: boolean;
  /** Storage driver the daemon uses (from /info). */
  readonly storageDriver: string;
  /** This process no longer needs the daemon (the supervisor stops it once nobody does). */
  release(): void;
}

/**
 * A Docker daemon that answers: DOCKER_HOST (unix://) or /var/run/docker.sock if it does,
 * else the private one, started when no process has started it yet. Throws (tests must
 * fail, never skip) when dockerd is missing or does not come up, with its log's tail.
 */
export async function ensureDocker(): Promise<DockerDaemon> {
  const hostSocket = socketOf(process.env.DOCKER_HOST) ?? DEFAULT_SOCKET;
  if (await ping(hostSocket)) return daemon(hostSocket, false, () => undefined);

  const dir = PRIVATE_DIR;
  const socket = join(dir, "docker.sock");
  mkdirSync(dir, { recursive: true });
  const lease = join(dir, "leases", String(process.pid));
  await withLock(dir, async () => {
    // Under the lock: a supervisor that is stopping removes leases/ while holding it.
    mkdirSync(join(dir, "leases"), { recursive: true });
    writeFileSync(lease, `${startTimeOf(process.pid) ?? ""}\n`);
    if (await ping(socket)) return;
    if (liveSupervisor(dir) !== undefined) return; // starting: wait below
    if (!findDockerd()) throw new Error("dockerd is not installed (npm run setup installs docker.io)");
    cleanLeftovers(dir);
    const child = spawn(process.execPath, ["--import=tsx", fileURLToPath(import.meta.url), "supervise", dir], {
      cwd: REPO_ROOT,
      detached: true,
      stdio: "ignore",
    });
    child.unref();
    writeFileSync(join(dir, "supervisor.pid"), `${child.pid}\n`);
  });
  const drop = (): void => {
    try {
      unlinkSync(lease);
    } catch {
      // already gone
    }
  };
  process.once("exit", drop);

  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!(await ping(socket))) {
    if (liveSupervisor(dir) === undefined || Date.now() > deadline) {
      drop();
      throw new Error(`the private dockerd did not come up in ${dir}: ${logTail(dir)}`);
    }
    await sleep(100);
  }
  return daemon(socket, true, drop);
}

async function daemon(socket: string, isPrivate: boolean, release: () => void): Promise<DockerDaemon> {
  const info = JSON.parse(await get(socket, "/info")) as { Driver?: string };
  const host = `unix://${socket}`;
  return { socket, host, env: { ...process.env, DOCKER_HOST: host }, private: isPrivate, storageDriver: info.Driver ?? "unknown", release };
}

/** The socket path of a `unix://` DOCKER_HOST, undefined for anything else. */
function socketOf(dockerHost: string | undefined): string | undefined {
  return dockerHost?.startsWith("unix://") ? dockerHost.slice("unix://".length) : undefined;
}

function get(socket: string, path: string, timeoutMs = 2_000): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const req = request({ socketPath: socket, path, method: "GET", timeout: timeoutMs }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (d: string) => (body += d));
      res.on("end", () => (res.statusCode === 200 ? resolvePromise(body) : reject(new Error(`GET ${path}: HTTP ${res.statusCode}`))));
    });
    req.on("timeout", () => req.destroy(new Error(`GET ${path}: timed out`)));
    req.on("error", reject);
    req.end();
  });
}

async function ping(socket: string): Promise<boolean> {
  if (!existsSync(socket)) return false;
  return get(socket, "/_ping").then(
    (body) => body === "OK",
    () => false,
  );
}

function findDockerd(): string | undefined {
  const dirs = [...(process.env.PATH ?? "").split(":"), "/usr/sbin", "/usr/local/sbin", "/sbin"];
  return dirs.map((d) => join(d, "dockerd")).find((p) => existsSync(p));
}

// ---- processes, leases, the lock ----

function liveSupervisor(dir: string): number | undefined {
  const pid = readIntFile(join(dir, "supervisor.pid"));
  if (pid === undefined || startTimeOf(pid) === undefined) return undefined;
  return argvOf(pid)?.includes("supervise") ? pid : undefined;
}

/** Leases whose process still lives (the same process: its start time matches); removes the rest. */
function liveLeases(dir: string): number[] {
  const live: number[] = [];
  let names: string[];
  try {
    names = readdirSync(join(dir, "leases"));
  } catch {
    return live;
  }
  for (const name of names) {
    const path = join(dir, "leases", name);
    let recorded = "";
    try {
      recorded = readFileSync(path, "utf8").trim();
    } catch {
      continue;
    }
    const now = startTimeOf(Number(name));
    if (now !== undefined && (recorded === "" || recorded === now)) live.push(Number(name));
    else rmSync(path, { force: true });
  }
  return live;
}

/** Runs `fn` holding `dir/lock` (a mkdir lock; one whose holder died is broken). */
async function withLock<T>(dir: string, fn: () => Promise<T> | T): Promise<T> {
  const lock = join(dir, "lock");
  const deadline = Date.now() + LOCK_TIMEOUT_MS;
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, "owner"), `${process.pid}\n`);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const owner = readIntFile(join(lock, "owner"));
      // No owner file yet: its maker is between mkdir and write; wait for it.
      if (owner !== undefined && startTimeOf(owner) === undefined) rmSync(lock, { recursive: true, force: true });
      if (Date.now() > deadline) throw new Error(`could not take ${lock} in ${LOCK_TIMEOUT_MS} ms (held by pid ${owner})`);
      await sleep(25);
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/** Mounts a killed dockerd left under `dir` (overlay layers, netns), innermost first. */
function mountsUnder(dir: string): string[] {
  try {
    return readFileSync("/proc/mounts", "utf8")
      .split("\n")
      .map((line) => line.split(" ")[1] ?? "")
      .filter((mnt) => mnt.startsWith(`${dir}/`))
      .reverse();
  } catch {
    return [];
  }
}

/** What a previous private daemon that did not stop cleanly left: its mounts and data. */
function cleanLeftovers(dir: string): void {
  for (const mnt of mountsUnder(dir)) spawnSync("umount", ["-l", mnt], { stdio: "ignore" });
  for (const name of ["data", "exec", "docker.sock", "dockerd.pid", "supervisor.pid"]) rmSync(join(dir, name), { recursive: true, force: true });
}

function logTail(dir: string): string {
  try {
    return readFileSync(join(dir, "dockerd.log"), "utf8").trim().split("\n").slice(-5).join(" | ") || "(empty log)";
  } catch {
    return "(no log)";
  }
}

// ---- the supervisor (this file run as `node --import=tsx dockerd.ts supervise DIR`) ----

async function supervise(dir: string): Promise<void> {
  const dockerd = findDockerd();
  if (!dockerd) throw new Error("dockerd is not installed");
  const log = openSync(join(dir, "dockerd.log"), "w");
  const child = spawn(
    dockerd,
    [
      "--data-root", join(dir, "data"),
      "--exec-root", join(dir, "exec"),
      "--pidfile", join(dir, "dockerd.pid"),
      "-H", `unix://${join(dir, "docker.sock")}`,
      "--bridge", "none",
      "--iptables=false",
      "--ip6tables=false",
      "--containerd-namespace", "vmctl-test",
      "--containerd-plugins-namespace", "vmctl-test-plugins",
    ],
    { stdio: ["ignore", log, log] },
  );
  closeSync(log);
  let exited = false;
  child.once("exit", () => (exited = true));
  // `kill <supervisor pid>` is a clean shutdown now, whoever still holds a lease.
  let told = false;
  for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"] as const) process.on(signal, () => (told = true));

  let idleSince: number | undefined;
  while (!exited) {
    await sleep(500);
    if (!told && liveLeases(dir).length > 0) {
      idleSince = undefined;
      continue;
    }
    idleSince ??= Date.now();
    if (!told && Date.now() - idleSince < IDLE_GRACE_MS) continue;
    // Decide under the lock, so no process takes a lease on a daemon being stopped.
    const stopped = await withLock(dir, async () => {
      if (!told && liveLeases(dir).length > 0) return false;
      // Containers die with it; 20 s for dockerd to unmount and let go of its layers.
      await terminateChild(child, 20_000, Infinity);
      cleanLeftovers(dir);
      // (cleanLeftovers removed supervisor.pid, still under the lock: the next caller
      // starts a new supervisor rather than waiting on this one, which is about to exit.)
      rmSync(join(dir, "leases"), { recursive: true, force: true });
      return true;
    });
    // Nothing more to clean: a new supervisor may already own the directory.
    if (stopped) return;
    idleSince = undefined;
  }
  // dockerd died on its own: nothing of it may stay.
  await withLock(dir, () => cleanLeftovers(dir));
  // The lock dir is gone now; the directory itself keeps only dockerd.log, for post-mortems.
}

if (process.argv[2] === "supervise" && process.argv[1] && pathToFileURL(process.argv[1]).href === import.meta.url) {
  const dir = process.argv[3];
  if (!dir) throw new Error("usage: dockerd.ts supervise DIR");
  await supervise(dir);
}
