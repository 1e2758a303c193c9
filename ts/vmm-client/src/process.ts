import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { VmctlError } from "@vmctl/core/contract";
import { terminateChild } from "@vmctl/core/target-kit";
import { VmmClient } from "./client.js";
import { fromGrpc } from "./errors.js";

export interface SpawnVmmOptions {
  /** Path of the `vmctl-vmm` binary. */
  readonly binary: string;
  /** API socket path; by default a fresh temporary directory holds it (removed on close). */
  readonly socketPath?: string;
  /** VM id passed as `--id`. */
  readonly id?: string;
  /** Give up waiting for the API after this long (default 10 s). */
  readonly readyTimeoutMs?: number;
  /** Extra environment (e.g. VMCTL_VMM_LOG=debug). */
  readonly env?: NodeJS.ProcessEnv;
  /**
   * A command the binary runs under, which must exec it (so the pid stays the VMM's):
   * e.g. `["ip", "netns", "exec", "NAME"]` to run it in a network namespace where its TAPs
   * are.
   */
  readonly runUnder?: readonly string[];
}

const STDERR_KEEP_BYTES = 16 * 1024;

/** A `vmctl-vmm` process this process started, with a connected client. */
export class VmmProcess implements AsyncDisposable {
  #stderr = "";
  #exited: Promise<number | null>;

  private constructor(
    readonly child: ChildProcess,
    readonly client: VmmClient,
    readonly socketPath: string,
    private readonly ownedDir: string | undefined,
  ) {
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (chunk: string) => {
      this.#stderr = (this.#stderr + chunk).slice(-STDERR_KEEP_BYTES);
    });
    this.#exited = new Promise((resolve) => {
      if (child.exitCode !== null) resolve(child.exitCode);
      else child.once("exit", (code) => resolve(code));
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** The most recent VMM log output (stderr), for diagnostics. */
  get stderr(): string {
    return this.#stderr;
  }

  /** Starts `vmctl-vmm` and resolves once its API answers GetInfo. */
  static async spawn(options: SpawnVmmOptions): Promise<VmmProcess> {
    const ownedDir = options.socketPath ? undefined : mkdtempSync(join(tmpdir(), "vmctl-vmm-"));
    const socketPath = options.socketPath ?? join(ownedDir as string, "api.sock");
    const args = ["--api-sock", socketPath, ...(options.id ? ["--id", options.id] : [])];
    const [command, ...prefix] = [...(options.runUnder ?? []), options.binary];
    const child = spawn(command as string, [...prefix, ...args], {
      stdio: ["ignore", "ignore", "pipe"],
      env: { ...process.env, ...options.env },
    });
    const vmm = new VmmProcess(child, new VmmClient(socketPath), socketPath, ownedDir);
    try {
      await vmm.#waitReady(options.readyTimeoutMs ?? 10_000);
      return vmm;
    } catch (err) {
      await vmm.close();
      throw err;
    }
  }

  async #waitReady(timeoutMs: number): Promise<void> {
    const spawnError = new Promise<never>((_, reject) =>
      this.child.once("error", (err) => reject(new VmctlError("UNAVAILABLE", `cannot start vmctl-vmm: ${err.message}`, { cause: err }))),
    );
    const deadline = Date.now() + timeoutMs;
    for (let delay = 1; ; delay = Math.min(delay * 2, 50)) {
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new VmctlError(
          "UNAVAILABLE",
          `vmctl-vmm exited (${this.child.exitCode ?? this.child.signalCode}) before its API was ready: ${this.#stderr.trim().split("\n").at(-1) ?? ""}`,
        );
      }
      try {
        await Promise.race([this.client.getInfo({ timeoutMs: 1000 }), spawnError]);
        return;
      } catch (err) {
        const e = fromGrpc(err);
        // Before the socket listens, grpc-js reports UNAVAILABLE or, under load, a
        // DEADLINE_EXCEEDED while it waits to pick a connection: both mean "not yet".
        const notYet = e.code === "UNAVAILABLE" || e.code === "DEADLINE_EXCEEDED";
        if (!notYet || Date.now() > deadline) throw e;
      }
      await sleep(delay);
    }
  }

  /** Resolves with the process exit code (null when killed by a signal). */
  exited(): Promise<number | null> {
    return this.#exited;
  }

  /** Stops the VMM (SIGTERM, then SIGKILL after 2 s) and removes what it owned. Idempotent. */
  async close(): Promise<void> {
    this.client.close();
    await terminateChild(this.child, 2000, Infinity);
    if (this.ownedDir) rmSync(this.ownedDir, { recursive: true, force: true });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
