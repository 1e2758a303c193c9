// Everything a target that runs its workload under a shim (oci's runc, lxc's
// lxc-execute, a plugin author's own runtime) has in common: launching it, reading its
// files back after a restart, the exit latch, stop with escalation, waiting, logs, and
// reaping the shim. The target keeps only what is its own: how the workload is up, how
// a signal reaches it, and how its exit status reads.
import { existsSync } from "node:fs";
import type { ExitInfo, LogChunk, LogOptions, Logger, ServiceState } from "../../contract/index.js";
import { mtimeOf, readIntFile } from "../files.js";
import { followFiles } from "../logs.js";
import type { ProcessRef } from "../process.js";
import { KILL_WAIT_MS, terminate } from "./escalation.js";
import { isShim, spawnShim, type ShimCommandOptions, type ShimFiles, type ShimIdentity } from "./shim.js";
import { readStopRecord, recordSignal, recordStopBeforeStart, type StopRecord } from "./stop-record.js";
import { waitFor } from "./wait.js";

/** How long waiters go without looking at the files again (a change in the run dir wakes them sooner). */
const POLL_MS = 50;

export interface ShimServiceFiles extends ShimFiles {
  /** The stop record (see StopRecord). */
  readonly stopFile: string;
}

/** The parts that differ between targets. */
export interface ShimWorkload {
  /** The service's state, as the target reads it (its `state()`). */
  readonly state: () => Promise<ServiceState>;
  /** The workload is up: the runtime wrote its pid file. */
  readonly started: () => boolean;
  /** Delivers a signal to the workload (after the supervisor recorded it). */
  readonly deliver: (signal: "SIGTERM" | "SIGKILL") => Promise<void>;
  /** Unfreezes a paused workload, so it can take a signal. */
  readonly unpause: () => Promise<void>;
  /** A file besides the exit file that means the service has ended (lxc's refusal). */
  readonly endFile?: string;
}

/** The facts the shim's files give about an ended service, for the target to interpret. */
export interface ShimEnd {
  /** The command's exit status; undefined when the shim died without writing one. */
  readonly status: number | undefined;
  readonly stopSignals: readonly string[];
  readonly stoppedBeforeStart: boolean;
  readonly at: Date;
}

/** What the files say, before the target looks at its runtime. */
export type ShimView =
  | { readonly kind: "exited"; readonly state: ServiceState }
  | { readonly kind: "created" }
  | { readonly kind: "ended"; readonly end: ShimEnd }
  | { readonly kind: "live"; readonly shimAlive: boolean; readonly stopping: boolean };

export interface ShimSupervisorOptions {
  readonly identity: ShimIdentity;
  readonly files: ShimServiceFiles;
  readonly workload: ShimWorkload;
  readonly log: Logger;
  /** For adopt(): the ledger says start() had begun (the shim was intended). */
  readonly startRequested?: boolean;
}

export class ShimSupervisor {
  readonly #who: ShimIdentity;
  readonly #files: ShimServiceFiles;
  readonly #workload: ShimWorkload;
  readonly #log: Logger;
  #startRequested: boolean;
  #pid: number | undefined;
  #exit: ExitInfo | undefined;
  #destroyed = false;

  constructor(options: ShimSupervisorOptions) {
    this.#who = options.identity;
    this.#files = options.files;
    this.#workload = options.workload;
    this.#log = options.log;
    this.#startRequested = options.startRequested ?? false;
  }

  get destroyed(): boolean {
    return this.#destroyed;
  }

  /** The shim was spawned at some point (by this process or an earlier one). */
  launched(): boolean {
    return this.#pid !== undefined || existsSync(this.#files.pidFile) || existsSync(this.#files.exitFile);
  }

  /** A launch was asked for, or happened, or stop() came first: start() has nothing left to do. */
  settled(): boolean {
    return this.launched() || this.#stop()?.beforeStart === true || (this.#workload.endFile !== undefined && existsSync(this.#workload.endFile));
  }

  /** Spawns the shim for `command`; the pid file is written at once (the shim writes it too). */
  launch(command: readonly string[], options?: ShimCommandOptions): ProcessRef {
    this.#startRequested = true;
    const ref = spawnShim(this.#who, this.#files, command, options);
    this.#pid = ref.pid;
    return ref;
  }

  pid(): number | undefined {
    return readIntFile(this.#files.pidFile) ?? this.#pid;
  }

  /** The exit, once latched: the first one read is kept, whatever the files say later. */
  exited(exit: ExitInfo): ServiceState {
    this.#exit ??= exit;
    return { phase: "exited", exit: this.#exit, instance: this.#who.tag, since: this.#exit.at };
  }

  /** The common part of state(); "live" leaves the target to ask its runtime. */
  view(): ShimView {
    const instance = this.#who.tag;
    if (this.#exit) return { kind: "exited", state: this.exited(this.#exit) };
    if (this.#destroyed) {
      const at = new Date();
      return { kind: "exited", state: { phase: "exited", exit: { code: null, reason: "stopped", detail: "destroyed", at }, instance, since: at } };
    }
    const stop = this.#stop();
    if (!this.#startRequested && !this.launched()) {
      return stop?.beforeStart ? { kind: "ended", end: this.#end(undefined, stop, this.#files.stopFile) } : { kind: "created" };
    }
    const shimAlive = this.#shimAlive();
    // Read the exit file only after looking at the shim: it writes the file, then dies.
    const status = readIntFile(this.#files.exitFile);
    if (status !== undefined) return { kind: "ended", end: this.#end(status, stop, this.#files.exitFile) };
    return { kind: "live", shimAlive, stopping: (stop?.signals.length ?? 0) > 0 };
  }

  /** The shim is gone without an exit file that view() saw: one more look, else the status is lost. */
  lostEnd(): ShimEnd {
    const stop = this.#stop();
    const status = readIntFile(this.#files.exitFile);
    return this.#end(status, stop, status === undefined ? this.#files.pidFile : this.#files.exitFile);
  }

  /** The exit status the shim writes, waited for up to `ms` (it is about to, once the runtime is done). */
  exitStatusWithin(ms: number): Promise<number | undefined> {
    return waitFor(() => readIntFile(this.#files.exitFile), { timeoutMs: ms, pollMs: POLL_MS, dir: this.#files.runDir });
  }

  /** The exit, once there is one: cheap while the shim lives and has written nothing (no runtime asked). */
  async exitIfEnded(): Promise<ExitInfo | undefined> {
    const f = this.#files;
    const endMarked = existsSync(f.exitFile) || (this.#workload.endFile !== undefined && existsSync(this.#workload.endFile));
    if (!this.#exit && !this.#destroyed && !endMarked && this.#shimAlive()) return undefined;
    return (await this.#workload.state()).exit;
  }

  async wait(): Promise<ExitInfo> {
    return (await waitFor(() => this.exitIfEnded(), { pollMs: POLL_MS, dir: this.#files.runDir }))!;
  }

  async endedWithin(ms: number): Promise<boolean> {
    return (await waitFor(() => this.exitIfEnded(), { timeoutMs: ms, pollMs: POLL_MS, dir: this.#files.runDir })) !== undefined;
  }

  /** Until the workload is up or the service has exited (or never launched). */
  async untilStartedOrExited(): Promise<void> {
    await waitFor(
      async () => {
        if (this.#workload.started()) return true;
        const phase = (await this.#workload.state()).phase;
        return phase === "exited" || phase === "created" ? true : undefined;
      },
      { pollMs: POLL_MS / 5, dir: this.#files.runDir },
    );
  }

  /**
   * stop(): a service never started is marked so (start() then does nothing); one
   * starting is waited for; then SIGTERM, SIGKILL after `timeoutMs`. Resolves whether it
   * ended; `ensureRunDir` makes the directory the stop record goes in.
   */
  async stop(timeoutMs: number, ensureRunDir: () => Promise<void>): Promise<boolean> {
    let state = await this.#workload.state();
    if (state.phase === "exited") return true;
    if (state.phase === "created") {
      await ensureRunDir();
      recordStopBeforeStart(this.#files.stopFile);
      return true;
    }
    if (state.phase === "starting") {
      await this.untilStartedOrExited();
      state = await this.#workload.state();
      if (state.phase === "exited") return true;
    }
    if (state.phase === "paused") await this.#workload.unpause().catch(() => undefined);
    return terminate({
      send: (signal) => this.signal(signal),
      endedWithin: (ms) => this.endedWithin(ms),
      graceMs: timeoutMs,
      onEscalate: () => this.#log.info(`${this.#who.name}: the workload ignored SIGTERM; killing it`, { instance: this.#who.tag, timeoutMs }),
    });
  }

  /**
   * destroy()'s first step: a starting service is waited for, a live one unpaused and
   * SIGKILLed. Resolves whether it has ended (within KILL_WAIT_MS of the kill).
   */
  async kill(): Promise<boolean> {
    let state = await this.#workload.state().catch(() => undefined);
    if (state?.phase === "starting") {
      await this.untilStartedOrExited();
      state = await this.#workload.state().catch(() => undefined);
    }
    if (state === undefined || state.phase === "exited" || state.phase === "created") return true;
    if (state.phase === "paused") await this.#workload.unpause().catch(() => undefined);
    await this.signal("SIGKILL");
    return this.endedWithin(KILL_WAIT_MS);
  }

  /** Records the signal (so the exit reads as "stopped" even after a restart), then delivers it. */
  async signal(signal: "SIGTERM" | "SIGKILL"): Promise<void> {
    recordSignal(this.#files.stopFile, signal);
    await this.#workload.deliver(signal);
  }

  logs(options?: LogOptions): AsyncIterable<LogChunk> {
    const files = [
      { stream: "stdout", path: this.#files.stdoutFile },
      { stream: "stderr", path: this.#files.stderrFile },
    ] as const;
    return followFiles(files, {
      follow: options?.follow,
      ended: async () => (await this.exitIfEnded()) !== undefined,
      dir: this.#files.runDir,
      maxWaitMs: POLL_MS,
    });
  }

  /** Waits for the shim to end; kills it if it outlives its workload. */
  async reap(): Promise<void> {
    const pid = this.pid();
    if (pid === undefined) return;
    const gone = await waitFor(() => (this.#shimAlive(pid) ? undefined : true), { timeoutMs: KILL_WAIT_MS, pollMs: POLL_MS, dir: this.#files.runDir });
    if (gone) return;
    this.#log.warn(`${this.#who.name} outlived its workload; killing it`, { pid });
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // ended meanwhile
    }
    // Reaped means gone: a caller may look for it the moment this resolves.
    await waitFor(() => (this.#shimAlive(pid) ? undefined : true), { timeoutMs: KILL_WAIT_MS, pollMs: POLL_MS, dir: this.#files.runDir });
  }

  /** destroy() is done: state() says so from now on, and keeps the exit it read last. */
  async finishDestroy(): Promise<void> {
    if (!this.#exit) {
      const final = await this.#workload.state().catch(() => undefined);
      if (final?.exit) this.#exit = final.exit;
    }
    this.#destroyed = true;
  }

  #shimAlive(pid = this.pid()): boolean {
    return pid !== undefined && isShim(pid, this.#who);
  }

  #stop(): StopRecord | undefined {
    return readStopRecord(this.#files.stopFile);
  }

  #end(status: number | undefined, stop: StopRecord | undefined, timeFile: string): ShimEnd {
    return {
      status,
      stopSignals: stop?.signals ?? [],
      stoppedBeforeStart: stop?.beforeStart ?? false,
      at: mtimeOf(timeFile) ?? new Date(),
    };
  }
}
