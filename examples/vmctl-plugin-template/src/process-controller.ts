// One service: a host command run under the kit's shim (a small sh in its own session,
// detached from the orchestrator, that records the command's exit status). Everything
// that must outlive the orchestrator is in files in ctx.serviceDir (output, exit status,
// the stop record, the shim's pid), so adopt() in a new orchestrator process sees what
// this one would have. ShimSupervisor does the common work (launch, stop with
// escalation, waiting, logs, reaping); this file says what is the target's own.
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { labelEnvironment, type ExitInfo, type JsonValue, type LogChunk, type LogOptions, type ServiceController, type ServiceState, type StopOptions, type TargetContext } from "@vmctl/core/contract";
import { childrenOf, processGroupGone, processGroupMembers, ShimSupervisor, signalOfStatus, type ShimEnd } from "@vmctl/core/target-kit";
import type { ProcessSpec } from "./spec.js";

/** argv[0] of the shim: how this target's shims are recognised in /proc. */
const SHIM_NAME = "vmctl-template-shim";
const DEFAULT_STOP_TIMEOUT_MS = 10_000;

/** The ledger entry for the shim: recorded before it is spawned, its pid file in `data`. */
const MAIN = { kind: "process", key: "main" } as const;

export class ProcessController implements ServiceController {
  readonly #shim: ShimSupervisor;
  readonly #pidFile: string;

  constructor(
    readonly id: string,
    readonly spec: ProcessSpec,
    readonly ctx: TargetContext,
  ) {
    const f = (name: string) => join(ctx.serviceDir, name);
    this.#pidFile = f("shim.pid");
    this.#shim = new ShimSupervisor({
      identity: { name: SHIM_NAME, tag: ctx.serviceDir },
      files: { runDir: ctx.serviceDir, pidFile: this.#pidFile, stdoutFile: f("stdout.log"), stderrFile: f("stderr.log"), exitFile: f("exit"), stopFile: f("stop.json") },
      log: ctx.log,
      workload: {
        state: () => this.state(),
        started: () => true, // the command runs from the moment the shim does
        deliver: async (signal) => this.#deliver(signal),
        unpause: async () => undefined, // pause is not claimed
      },
    });
  }

  async prepare(): Promise<void> {
    await mkdir(this.ctx.serviceDir, { recursive: true });
  }

  async start(): Promise<void> {
    if (this.#shim.settled()) return;
    await this.prepare();
    // Record BEFORE making: if we die right after spawning, adopt still knows a shim was meant.
    this.ctx.resources.intend({ ...MAIN, data: { pidFile: this.#pidFile } });
    const ref = this.#shim.launch(this.spec.args, {
      cwd: this.spec.cwd ?? this.ctx.serviceDir,
      // The owner labels in its environment: a reaper finds them in /proc/PID/environ.
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...labelEnvironment(this.ctx.ownerLabels), ...this.spec.env },
    });
    this.ctx.resources.intend({ ...MAIN, data: { pidFile: this.#pidFile, pid: ref.pid, startTime: ref.startTime } });
  }

  async stop(options: StopOptions = {}): Promise<void> {
    // Graceful for timeoutMs, then forced: stop never waits much longer than the caller allowed.
    await this.#shim.stop(options.timeoutMs ?? DEFAULT_STOP_TIMEOUT_MS, () => this.prepare());
  }

  async state(): Promise<ServiceState> {
    const view = this.#shim.view();
    if (view.kind === "exited") return view.state;
    if (view.kind === "created") return { phase: "created", since: new Date() };
    if (view.kind === "ended") return this.#shim.exited(exitOf(view.end));
    if (!view.shimAlive) return this.#shim.exited(exitOf(this.#shim.lostEnd()));
    const shim = this.#shim.pid();
    const pid = shim === undefined ? undefined : childrenOf(shim)[0];
    return { phase: view.stopping ? "stopping" : "running", pid, instance: String(shim), since: new Date() };
  }

  logs(options: LogOptions = {}): AsyncIterable<LogChunk> {
    return this.#shim.logs(options);
  }

  wait(): Promise<ExitInfo> {
    return this.#shim.wait();
  }

  async destroy(): Promise<void> {
    if (this.#shim.destroyed) return;
    await this.#shim.kill();
    await this.#shim.reap();
    // The command's own children may outlive it: destroy frees everything, so wait for
    // the whole group (the shim leads it). Zombies do not count.
    const shim = this.#shim.pid();
    if (shim !== undefined) await processGroupGone(shim);
    await this.#shim.finishDestroy();
    // Files stay in the service dir: the orchestrator removes the dir after destroy.
    this.ctx.resources.release(MAIN.kind, MAIN.key);
  }

  record(): JsonValue {
    return {};
  }

  /**
   * SIGTERM goes to the command (the shim's child), which may end as it likes; SIGKILL to
   * every member of the shim's group but the shim, which then records the status.
   */
  #deliver(signal: "SIGTERM" | "SIGKILL"): void {
    const shim = this.#shim.pid();
    if (shim === undefined) return;
    const targets = signal === "SIGTERM" ? childrenOf(shim) : processGroupMembers(shim).filter((pid) => pid !== shim);
    for (const pid of targets) {
      try {
        process.kill(pid, signal);
      } catch {
        // ended meanwhile
      }
    }
  }
}

/** How the command ended, from what the shim's files say. */
function exitOf(end: ShimEnd): ExitInfo {
  const stopped = end.stoppedBeforeStart || end.stopSignals.length > 0;
  const reason = stopped ? "stopped" : "exited";
  if (end.status !== undefined) {
    const signal = signalOfStatus(end.status);
    return signal ? { code: null, signal, reason, at: end.at } : { code: end.status, reason, at: end.at };
  }
  if (end.stoppedBeforeStart) return { code: null, reason, detail: "stopped before it started", at: end.at };
  if (stopped) return { code: null, signal: end.stopSignals.at(-1), reason, at: end.at };
  return { code: null, reason: "lost", detail: "the process ended without recording its exit code", at: end.at };
}
