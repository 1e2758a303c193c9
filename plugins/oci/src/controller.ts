// One oci service. All of its state lives in files under ctx.serviceDir (see layout.ts)
// and in the runtime's own state, so a controller made by adopt() in a new orchestrator
// process sees exactly what the original one would have.
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { changeIn, followFiles, isDirectory, mtimeOf, readIntFile, readJsonFile, writeAtomic } from "@vmctl/core/target-kit";
import { VmctlError } from "@vmctl/core/contract";
import type {
  ExecResult,
  ExitInfo,
  JsonValue,
  LogChunk,
  LogOptions,
  ServiceController,
  ServiceState,
  StopOptions,
  TargetContext,
} from "@vmctl/core/contract";
import { buildRuntimeConfig } from "./bundle.js";
import { interpretExit } from "./exit.js";
import { hostnameFor, ledger, type ServiceLayout } from "./layout.js";
import { lastLine, type OciRuntime } from "./runtime.js";
import type { OciSpec } from "./spec.js";

/** How often wait(), stop() and logs({ follow }) look at the files again. */
const POLL_MS = 50;
/** How long state() waits for a shim whose container is gone to write the exit status. */
const EXIT_FILE_WAIT_MS = 500;
const DEFAULT_STOP_TIMEOUT_MS = 10_000;

/**
 * The shim: a session leader (detached from the orchestrator) that runs the runtime in
 * the foreground with output to files, then records the runtime's exit status. Runs as
 * `sh -c SHIM vmctl-oci-shim PIDFILE STDOUT STDERR EXITFILE RUNTIME-ARGV...`.
 */
const SHIM = [
  'pidf=$1 out=$2 err=$3 exitf=$4; shift 4',
  'echo $$ > "$pidf.tmp" && mv -f "$pidf.tmp" "$pidf"',
  '"$@" </dev/null >>"$out" 2>>"$err"',
  'echo $? > "$exitf.tmp" && mv -f "$exitf.tmp" "$exitf"',
].join("\n");

export interface OciControllerOptions {
  readonly id: string;
  readonly spec: OciSpec;
  readonly ctx: TargetContext;
  readonly runtime: OciRuntime;
  readonly containerId: string;
  readonly layout: ServiceLayout;
  /** For adopt(): the ledger says start() had begun (the shim was intended). */
  readonly startRequested?: boolean;
}

interface StopRecord {
  beforeStart?: boolean;
  signals: string[];
}

export class OciController implements ServiceController {
  readonly id: string;
  readonly #spec: OciSpec;
  readonly #ctx: TargetContext;
  readonly #runtime: OciRuntime;
  readonly #containerId: string;
  readonly #l: ServiceLayout;
  readonly #createdAt = new Date();
  #startRequested: boolean;
  #shimPid: number | undefined;
  #exit: ExitInfo | undefined;
  #destroyed = false;

  constructor(options: OciControllerOptions) {
    this.id = options.id;
    this.#spec = options.spec;
    this.#ctx = options.ctx;
    this.#runtime = options.runtime;
    this.#containerId = options.containerId;
    this.#l = options.layout;
    this.#startRequested = options.startRequested ?? false;
  }

  /** The runtime's container id ("vmctl-" + service id). */
  get containerId(): string {
    return this.#containerId;
  }

  async prepare(): Promise<void> {
    this.#assertNotDestroyed();
    if (existsSync(this.#l.configFile) && existsSync(this.#l.runDir)) return;
    if (!isDirectory(this.#spec.rootfs)) {
      throw new VmctlError("FAILED_PRECONDITION", `rootfs ${this.#spec.rootfs} is not a directory`, {
        details: { serviceId: this.id, target: "oci" },
      });
    }
    const config = buildRuntimeConfig(this.#spec, {
      hostname: hostnameFor(this.id),
      cgroupsPath: this.#containerId,
      annotations: { ...this.#ctx.ownerLabels, "org.vmctl.service": this.id },
    });
    this.#ctx.resources.intend(ledger.dir(this.#l.bundleDir));
    await mkdir(this.#l.bundleDir, { recursive: true });
    writeAtomic(this.#l.configFile, `${JSON.stringify(config, null, 2)}\n`);
    this.#ctx.resources.intend(ledger.dir(this.#l.runDir));
    await mkdir(this.#l.runDir, { recursive: true });
  }

  async start(): Promise<void> {
    this.#assertNotDestroyed();
    if (this.#launched() || this.#readStop()?.beforeStart) {
      await this.#untilRunningOrExited();
      return;
    }
    await this.prepare();
    this.#startRequested = true;
    const l = this.#l;
    this.#ctx.resources.intend(ledger.container(this.#runtime.name, this.#containerId, this.#runtime.root));
    this.#ctx.resources.intend(ledger.shim(this.#containerId, l.shimPidFile));
    const argv = this.#runtime.runCommand({
      id: this.#containerId,
      bundle: l.bundleDir,
      pidFile: l.containerPidFile,
      logFile: l.runtimeLogFile,
    });
    const child = spawn(
      "/bin/sh",
      ["-c", SHIM, "vmctl-oci-shim", l.shimPidFile, l.stdoutFile, l.stderrFile, l.exitFile, ...argv],
      { detached: true, stdio: "ignore", cwd: l.runDir },
    );
    child.on("error", (err) => this.#ctx.log.error("oci shim failed to spawn", { error: String(err) }));
    child.unref();
    if (child.pid === undefined) {
      throw new VmctlError("INTERNAL", `could not spawn the oci shim for ${this.id}`);
    }
    this.#shimPid = child.pid;
    writeAtomic(l.shimPidFile, `${child.pid}\n`);
    this.#ctx.log.debug("oci container starting", { containerId: this.#containerId, shimPid: child.pid });

    await this.#untilRunningOrExited();
    const state = await this.state();
    if (state.exit?.reason === "failed") {
      throw new VmctlError("FAILED_PRECONDITION", `${this.#runtime.name} could not start ${this.id}: ${state.exit.detail}`, {
        details: { serviceId: this.id, target: "oci" },
      });
    }
  }

  async stop(options?: StopOptions): Promise<void> {
    const timeoutMs = options?.timeoutMs ?? DEFAULT_STOP_TIMEOUT_MS;
    let state = await this.state();
    if (state.phase === "exited") return;
    if (state.phase === "created") {
      this.#ctx.resources.intend(ledger.dir(this.#l.runDir));
      await mkdir(this.#l.runDir, { recursive: true });
      writeAtomic(this.#l.stopFile, JSON.stringify({ beforeStart: true, signals: [] } satisfies StopRecord));
      return;
    }
    if (state.phase === "starting") {
      await this.#untilRunningOrExited();
      state = await this.state();
      if (state.phase === "exited") return;
    }
    if (state.phase === "paused") await this.#runtime.resume(this.#containerId).catch(() => undefined);

    await this.#signal("SIGTERM");
    if (await this.#exitedWithin(timeoutMs)) return;
    this.#ctx.log.info("oci container ignored SIGTERM; killing it", { containerId: this.#containerId, timeoutMs });
    await this.#signal("SIGKILL");
    await this.wait();
  }

  async state(): Promise<ServiceState> {
    const instance = this.#containerId;
    if (this.#exit) return { phase: "exited", exit: this.#exit, instance, since: this.#exit.at };
    if (this.#destroyed) {
      const at = new Date();
      return { phase: "exited", exit: { code: null, reason: "stopped", detail: "destroyed", at }, instance, since: at };
    }
    const l = this.#l;
    const stop = this.#readStop();
    if (!this.#startRequested && !this.#launched()) {
      if (stop?.beforeStart) return this.#exited(interpretExit(this.#evidence(undefined, stop, l.stopFile)));
      return { phase: "created", instance, since: mtimeOf(l.configFile) ?? this.#createdAt };
    }

    const shimPid = readIntFile(l.shimPidFile) ?? this.#shimPid;
    const shimAlive = shimPid !== undefined && isShim(shimPid, this.#containerId);
    // Read the exit file only after looking at the shim: it writes the file, then dies.
    const status = readIntFile(l.exitFile);
    if (status !== undefined) return this.#exited(interpretExit(this.#evidence(status, stop, l.exitFile)));

    const rs = await this.#runtime.state(this.#containerId);
    const stopping = (stop?.signals.length ?? 0) > 0;
    if (rs && rs.status !== "stopped") {
      const pid = rs.pid > 0 ? rs.pid : undefined;
      const since = mtimeOf(l.containerPidFile) ?? this.#createdAt;
      if (rs.status === "running") return { phase: stopping ? "stopping" : "running", pid, instance, since };
      if (rs.status === "paused") return { phase: "paused", pid, instance, since };
      return { phase: "starting", instance, since };
    }
    if (shimAlive) {
      // Not yet created by the runtime: starting.
      if (!existsSync(l.containerPidFile)) return { phase: "starting", instance, since: this.#createdAt };
      // Gone from the runtime, and the shim is about to write the exit status: wait for it
      // briefly rather than report a phase that is not true ("stopping" when nobody stopped it).
      const written = await this.#exitFileWithin(EXIT_FILE_WAIT_MS);
      if (written !== undefined) return this.#exited(interpretExit(this.#evidence(written, stop, l.exitFile)));
      return { phase: stopping ? "stopping" : "running", instance, since: mtimeOf(l.containerPidFile) ?? this.#createdAt };
    }
    // The shim is gone without an exit file (killed, or never spawned): the status is lost.
    const again = readIntFile(l.exitFile);
    if (again !== undefined) return this.#exited(interpretExit(this.#evidence(again, stop, l.exitFile)));
    return this.#exited(interpretExit(this.#evidence(undefined, stop, l.shimPidFile)));
  }

  async #exitFileWithin(ms: number): Promise<number | undefined> {
    const deadline = Date.now() + ms;
    for (;;) {
      const status = readIntFile(this.#l.exitFile);
      if (status !== undefined || Date.now() >= deadline) return status;
      await changeIn(this.#l.runDir, Math.max(1, deadline - Date.now()));
    }
  }

  logs(options?: LogOptions): AsyncIterable<LogChunk> {
    const files = [
      { stream: "stdout", path: this.#l.stdoutFile },
      { stream: "stderr", path: this.#l.stderrFile },
    ] as const;
    return followFiles(files, {
      follow: options?.follow,
      ended: async () => (await this.#exitIfEnded()) !== undefined,
      dir: this.#l.runDir,
      maxWaitMs: POLL_MS,
    });
  }

  async wait(): Promise<ExitInfo> {
    for (;;) {
      const exit = await this.#exitIfEnded();
      if (exit) return exit;
      await changeIn(this.#l.runDir, POLL_MS);
    }
  }

  async exec(args: readonly string[]): Promise<ExecResult> {
    const state = await this.state();
    if (state.phase !== "running") {
      throw new VmctlError("FAILED_PRECONDITION", `cannot exec in ${this.id}: it is ${state.phase}`, {
        details: { serviceId: this.id, target: "oci" },
      });
    }
    if (args.length === 0) throw new VmctlError("INVALID_ARGUMENT", "exec needs a command", { details: { field: "args" } });
    return this.#runtime.exec(this.#containerId, args);
  }

  async pause(): Promise<void> {
    const state = await this.state();
    if (state.phase === "paused") return;
    if (state.phase !== "running") {
      throw new VmctlError("FAILED_PRECONDITION", `cannot pause ${this.id}: it is ${state.phase}`);
    }
    await this.#runtime.pause(this.#containerId);
  }

  async resume(): Promise<void> {
    const state = await this.state();
    if (state.phase === "running") return;
    if (state.phase !== "paused") {
      throw new VmctlError("FAILED_PRECONDITION", `cannot resume ${this.id}: it is ${state.phase}`);
    }
    await this.#runtime.resume(this.#containerId);
  }

  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    const l = this.#l;
    const res = this.#ctx.resources;
    let state = await this.state().catch(() => undefined);
    if (state?.phase === "starting") {
      await this.#untilRunningOrExited();
      state = await this.state().catch(() => undefined);
    }
    if (state && state.phase !== "exited" && state.phase !== "created") {
      if (state.phase === "paused") await this.#runtime.resume(this.#containerId).catch(() => undefined);
      await this.#signal("SIGKILL");
      // Let the shim's runc reap the container, delete it and write the exit status.
      await this.#exitedWithin(DEFAULT_STOP_TIMEOUT_MS);
    }
    await this.#runtime.delete(this.#containerId);
    await this.#reapShim();
    if (!this.#exit) {
      const final = await this.state().catch(() => undefined);
      if (final?.exit) this.#exit = final.exit;
    }
    res.release(`${this.#runtime.name}-container`, this.#containerId);
    res.release("process", `shim:${this.#containerId}`);
    for (const dir of [l.bundleDir, l.runDir]) {
      await rm(dir, { recursive: true, force: true });
      res.release("dir", dir);
    }
    this.#destroyed = true;
    this.#ctx.log.debug("oci container destroyed", { containerId: this.#containerId });
  }

  record(): JsonValue {
    return {
      containerId: this.#containerId,
      runtime: this.#runtime.name,
      root: this.#runtime.root,
    };
  }

  // ---- internals ----

  #assertNotDestroyed(): void {
    if (this.#destroyed) {
      throw new VmctlError("FAILED_PRECONDITION", `${this.id} was destroyed`, { details: { serviceId: this.id } });
    }
  }

  /** The shim was spawned at some point (by this process or an earlier one). */
  #launched(): boolean {
    return this.#shimPid !== undefined || existsSync(this.#l.shimPidFile) || existsSync(this.#l.exitFile);
  }

  #exited(exit: ExitInfo): ServiceState {
    this.#exit = exit;
    return { phase: "exited", exit, instance: this.#containerId, since: exit.at };
  }

  #evidence(status: number | undefined, stop: StopRecord | undefined, timeFile: string) {
    return {
      status,
      started: existsSync(this.#l.containerPidFile),
      stopSignals: stop?.signals ?? [],
      stoppedBeforeStart: stop?.beforeStart ?? false,
      runtimeError: runtimeError(this.#l.runtimeLogFile),
      at: mtimeOf(timeFile) ?? new Date(),
    };
  }

  #readStop(): StopRecord | undefined {
    return readJsonFile<StopRecord>(this.#l.stopFile);
  }

  /** Records the signal (so the exit reads as "stopped" even after a restart), then sends it. */
  async #signal(signal: string): Promise<void> {
    const stop = this.#readStop() ?? { signals: [] };
    if (!stop.signals.includes(signal)) stop.signals.push(signal);
    writeAtomic(this.#l.stopFile, JSON.stringify(stop));
    await this.#runtime.kill(this.#containerId, signal);
  }

  /**
   * The exit, once there is one. Cheaper than state() for polling: while the shim
   * lives and has written no exit file, the service has not ended, and no runtime
   * process needs to be spawned to know it.
   */
  async #exitIfEnded(): Promise<ExitInfo | undefined> {
    if (!this.#exit && !this.#destroyed && !existsSync(this.#l.exitFile)) {
      const shimPid = readIntFile(this.#l.shimPidFile) ?? this.#shimPid;
      if (shimPid !== undefined && isShim(shimPid, this.#containerId)) return undefined;
    }
    return (await this.state()).exit;
  }

  async #exitedWithin(ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    for (;;) {
      if ((await this.#exitIfEnded()) !== undefined) return true;
      if (Date.now() >= deadline) return false;
      await sleep(Math.min(POLL_MS, Math.max(0, deadline - Date.now())));
    }
  }

  /** Until the workload runs (runtime wrote its pid file) or the service has exited. */
  async #untilRunningOrExited(): Promise<void> {
    for (;;) {
      if (existsSync(this.#l.containerPidFile)) return;
      const state = await this.state();
      if (state.phase === "exited" || state.phase === "created") return;
      await sleep(POLL_MS / 5);
    }
  }

  /** Waits for the shim to end; kills it if it outlives its container. */
  async #reapShim(): Promise<void> {
    const pid = readIntFile(this.#l.shimPidFile) ?? this.#shimPid;
    if (pid === undefined) return;
    const deadline = Date.now() + DEFAULT_STOP_TIMEOUT_MS;
    while (isShim(pid, this.#containerId)) {
      if (Date.now() >= deadline) {
        this.#ctx.log.warn("oci shim outlived its container; killing it", { pid });
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
        return;
      }
      await sleep(POLL_MS);
    }
  }
}

/** pid is a live (not zombie) shim of this container: guards against pid reuse. */
function isShim(pid: number, containerId: string): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (fields[0] === "Z" || fields[0] === "X") return false;
    const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    return argv.includes("vmctl-oci-shim") && argv.includes(containerId);
  } catch {
    return false;
  }
}

/** The runtime's last error-level message from its JSON log, if any. */
function runtimeError(logFile: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(logFile, "utf8");
  } catch {
    return undefined;
  }
  let message: string | undefined;
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    try {
      const entry = JSON.parse(line) as { level?: string; msg?: string };
      if ((entry.level === "error" || entry.level === "fatal") && entry.msg) message = entry.msg;
    } catch {
      message = lastLine(line) || message;
    }
  }
  return message;
}
