// Test helpers for vmctld end to end: a private temp dir per test (state dir, socket,
// busybox rootfs), the daemon as a real child process, the CLI as a real child process,
// and a teardown that leaves nothing behind (daemon, runc containers, shims, files).
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { connect, type VmctlClient } from "@vmctl/client";
import { busyboxRootfs, requireRunc } from "../../../plugins/oci/src/testing/context.js";
import { processesMentioning } from "@vmctl/plugin-conformance";

export { processesMentioning };

const here = (path: string): string => fileURLToPath(new URL(path, import.meta.url));
export const REPO_ROOT = here("../../../");
export const VMCTLD_BIN = here("../../../ts/server/dist/bin.js");
export const CLI_BIN = here("../../../ts/cli/dist/bin.cjs");
/** The native front (crates/cli), as scripts/build makes it and links it as `vmctl`. */
export const NATIVE_CLI_BIN = here("../../../target/x86_64-unknown-linux-gnu/release/vmctl");
export const PROCESS_PLUGIN_FIXTURE = here("../../fixtures/vmctl-plugin-process");

/** Throws (never skips) when the packages under test were not built. */
export function requireBuilt(): void {
  for (const bin of [VMCTLD_BIN, CLI_BIN]) {
    if (!existsSync(bin)) throw new Error(`${bin} is missing: run npm run build first`);
  }
}

export interface Sandbox {
  readonly dir: string;
  readonly stateDir: string;
  readonly socket: string;
  readonly rootfs: string;
  /** runc's --root for the oci target of this state dir. */
  readonly runcRoot: string;
  /** Environment for the CLI: VMCTL_SOCKET and VMCTL_STATE_DIR of this sandbox. */
  readonly env: NodeJS.ProcessEnv;
}

/** A fresh sandbox with a busybox rootfs; runc and busybox must be installed. */
export function sandbox(prefix = "vmctl-e2e-"): Sandbox {
  requireBuilt();
  requireRunc();
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const stateDir = join(dir, "state");
  const socket = join(dir, "run", "vmctld.sock");
  return {
    dir,
    stateDir,
    socket,
    rootfs: busyboxRootfs(dir),
    runcRoot: join(stateDir, "targets", "oci", "runc"),
    env: { ...process.env, VMCTL_SOCKET: socket, VMCTL_STATE_DIR: stateDir },
  };
}

/** A vmctld child process on a sandbox. */
export class Daemon {
  readonly exited: Promise<number | null>;
  #client: VmctlClient | undefined;

  private constructor(
    readonly sandbox: Sandbox,
    readonly child: ChildProcess,
    readonly logPath: string,
  ) {
    this.exited = new Promise((resolve) => child.once("exit", (code) => resolve(code)));
  }

  /** Starts vmctld and resolves once it answers on its socket. */
  static async start(
    sb: Sandbox,
    options: { plugins?: readonly string[]; extraArgs?: readonly string[]; env?: NodeJS.ProcessEnv; wrap?: (argv: readonly string[]) => string[] } = {},
  ): Promise<Daemon> {
    const logPath = join(sb.dir, `vmctld-${Date.now()}.log`);
    const args = [VMCTLD_BIN, "--state-dir", sb.stateDir, "--socket", sb.socket, "--log-level", "debug"];
    for (const plugin of options.plugins ?? []) args.push("--plugin", plugin);
    args.push(...(options.extraArgs ?? []));
    const fd = openSync(logPath, "a");
    // `wrap` runs it inside something (a network namespace: helpers/netns.ts) that must exec it, so the child is vmctld.
    const argv = options.wrap === undefined ? [process.execPath, ...args] : options.wrap([process.execPath, ...args]);
    const child = spawn(argv[0] as string, argv.slice(1), { stdio: ["ignore", fd, fd], ...(options.env === undefined ? {} : { env: options.env }) });
    closeSync(fd);
    const daemon = new Daemon(sb, child, logPath);
    let gone = false;
    void daemon.exited.then(() => (gone = true));
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (gone) throw new Error(`vmctld exited during start-up: ${daemon.log().trim().split("\n").slice(-3).join(" | ")}`);
      const client = connect(sb.socket);
      try {
        await client.ping(1000);
        daemon.#client = client;
        return daemon;
      } catch {
        client.close();
      }
      if (Date.now() > deadline) {
        child.kill("SIGKILL");
        throw new Error(`vmctld did not answer within 30 s: ${daemon.log()}`);
      }
      await sleep(25);
    }
  }

  get pid(): number {
    return this.child.pid as number;
  }

  get client(): VmctlClient {
    if (this.#client === undefined) throw new Error("daemon not started");
    return this.#client;
  }

  log(): string {
    try {
      return readFileSync(this.logPath, "utf8");
    } catch {
      return "";
    }
  }

  /** SIGTERM (graceful) and wait for the exit code. */
  async stop(): Promise<number | null> {
    this.#client?.close();
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGTERM");
    return this.exited;
  }

  /** SIGKILL: a crash. */
  async kill9(): Promise<void> {
    this.#client?.close();
    this.child.kill("SIGKILL");
    await this.exited;
  }
}

/** Container ids runc knows under `root` (retrying runc's race with a deletion). */
export function runcList(root: string): string[] {
  if (!existsSync(root)) return [];
  for (let attempt = 0; ; attempt++) {
    const r = spawnSync(requireRunc(), ["--root", root, "list", "-q"], { encoding: "utf8" });
    if (r.status === 0) return r.stdout.split("\n").filter(Boolean);
    if (attempt >= 20 || !/no such file/.test(r.stderr)) throw new Error(`runc list: ${r.stderr.trim()}`);
  }
}

/** Shim / workload processes of the services under a sandbox's state dir. */
export function serviceProcesses(sb: Sandbox): number[] {
  return processesMentioning(join(sb.stateDir, "services"));
}

/** Stops the daemons, removes every container and process the sandbox made, deletes its files. */
export async function teardown(sb: Sandbox, daemons: readonly (Daemon | undefined)[] = []): Promise<void> {
  for (const daemon of daemons) {
    if (daemon === undefined) continue;
    const stopped = daemon.stop();
    const timeout = sleep(10_000).then(() => daemon.child.kill("SIGKILL"));
    await Promise.race([stopped, timeout]);
  }
  const runc = requireRunc();
  try {
    for (const id of runcList(sb.runcRoot)) spawnSync(runc, ["--root", sb.runcRoot, "delete", "--force", id], { stdio: "ignore" });
  } catch {
    // nothing to list
  }
  for (const pid of processesMentioning(sb.dir)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone
    }
  }
  rmSync(sb.dir, { recursive: true, force: true });
}

/** Stops the daemon a CLI started on the sandbox (found by its socket in the command line), politely. */
export async function stopAutoStarted(sb: Sandbox): Promise<void> {
  for (const pid of processesMentioning(sb.socket)) {
    try {
      process.kill(pid, "SIGTERM");
    } catch {
      // gone
    }
  }
  await until("vmctld to stop", () => processesMentioning(sb.socket).length === 0);
}

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Which `vmctl`: the Node CLI (the default), or the native front users have on their PATH. */
export type CliFront = "node" | "native";

/** The command line that runs `vmctl ARGS...` with `front`. */
export function cliArgv(front: CliFront, args: readonly string[]): [string, ...string[]] {
  if (front === "native") {
    if (!existsSync(NATIVE_CLI_BIN)) throw new Error(`${NATIVE_CLI_BIN} is missing: run npm run build first`);
    return [NATIVE_CLI_BIN, ...args];
  }
  return [process.execPath, CLI_BIN, ...args];
}

/** Runs `vmctl ARGS...` against the sandbox (VMCTL_SOCKET / VMCTL_STATE_DIR set). */
export function vmctl(sb: Sandbox, args: readonly string[], options: { timeoutMs?: number; stdin?: string | Uint8Array; front?: CliFront } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const [command, ...argv] = cliArgv(options.front ?? "node", args);
    const child = spawn(command, argv, { env: sb.env, stdio: [options.stdin === undefined ? "ignore" : "pipe", "pipe", "pipe"] });
    if (options.stdin !== undefined) child.stdin?.end(options.stdin);
    let stdout = "";
    let stderr = "";
    child.stdout?.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr?.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`vmctl ${args.join(" ")} did not finish in ${options.timeoutMs ?? 30_000} ms; stderr: ${stderr}`));
    }, options.timeoutMs ?? 30_000);
    child.once("error", reject);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A running `vmctl ...` whose output can be awaited piece by piece. */
export function vmctlLive(
  sb: Sandbox,
  args: readonly string[],
  front: CliFront = "node",
): { child: ChildProcess; output: () => string; errors: () => string; done: Promise<CliResult> } {
  const [command, ...argv] = cliArgv(front, args);
  const child = spawn(command, argv, { env: sb.env, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout?.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr?.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  const done = new Promise<CliResult>((resolve) => child.once("close", (code) => resolve({ code, stdout, stderr })));
  return { child, output: () => stdout, errors: () => stderr, done };
}

/** Polls `check` until it returns true (bounded: fails after `timeoutMs`). */
export async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Pid is alive (and not a zombie). */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return !stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch {
    return false;
  }
}
