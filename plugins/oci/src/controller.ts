// One oci service. All of its state lives in files under ctx.serviceDir (see layout.ts)
// and in the runtime's own state, so a controller made by adopt() in a new orchestrator
// process sees exactly what the original one would have. The shim, its files, stop and
// waiting are the kit's ShimSupervisor; this file says what is runc's own.
import { existsSync } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { isDirectory, mtimeOf, packContainerPath, ShimSupervisor, writeAtomic, type ShimEnd } from "@vmctl/core/target-kit";
import { serviceLabels, VmctlError } from "@vmctl/core/contract";
import type {
  ExecProcess,
  ExecRequest,
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
import { runtimeError, type OciRuntime } from "./runtime.js";
import type { OciSpec } from "./spec.js";

/** argv[0] of the shim, so it can be recognised in /proc. */
const SHIM_NAME = "vmctl-oci-shim";
/** How long state() waits for a shim whose container is gone to write the exit status. */
const EXIT_FILE_WAIT_MS = 500;
const DEFAULT_STOP_TIMEOUT_MS = 10_000;

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

export class OciController implements ServiceController {
  readonly id: string;
  readonly #spec: OciSpec;
  readonly #ctx: TargetContext;
  readonly #runtime: OciRuntime;
  readonly #containerId: string;
  readonly #l: ServiceLayout;
  readonly #createdAt = new Date();
  readonly #shim: ShimSupervisor;

  constructor(options: OciControllerOptions) {
    this.id = options.id;
    this.#spec = options.spec;
    this.#ctx = options.ctx;
    this.#runtime = options.runtime;
    this.#containerId = options.containerId;
    this.#l = options.layout;
    this.#shim = new ShimSupervisor({
      identity: { name: SHIM_NAME, tag: options.containerId },
      files: { ...options.layout, pidFile: options.layout.shimPidFile },
      log: options.ctx.log,
      startRequested: options.startRequested,
      workload: {
        state: () => this.state(),
        started: () => existsSync(this.#l.containerPidFile),
        deliver: (signal) => this.#runtime.kill(this.#containerId, signal),
        unpause: () => this.#runtime.resume(this.#containerId),
      },
    });
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
      annotations: serviceLabels(this.#ctx.ownerLabels, this.id),
    });
    this.#ctx.resources.intend(ledger.dir(this.#l.bundleDir));
    await mkdir(this.#l.bundleDir, { recursive: true });
    writeAtomic(this.#l.configFile, `${JSON.stringify(config, null, 2)}\n`);
    await this.#ensureRunDir();
  }

  async start(): Promise<void> {
    this.#assertNotDestroyed();
    if (this.#shim.settled()) {
      await this.#shim.untilStartedOrExited();
      return;
    }
    await this.prepare();
    const l = this.#l;
    this.#ctx.resources.intend(ledger.container(this.#runtime.name, this.#containerId, this.#runtime.root));
    this.#ctx.resources.intend(ledger.shim(this.#containerId, l.shimPidFile));
    const argv = this.#runtime.runCommand({
      id: this.#containerId,
      bundle: l.bundleDir,
      pidFile: l.containerPidFile,
      logFile: l.runtimeLogFile,
    });
    const shim = this.#shim.launch(argv);
    writeAtomic(l.shimPidFile, `${shim.pid}\n`);
    this.#ctx.log.debug("oci container starting", { containerId: this.#containerId, shimPid: shim.pid });

    await this.#shim.untilStartedOrExited();
    const state = await this.state();
    if (state.exit?.reason === "failed") {
      throw new VmctlError("FAILED_PRECONDITION", `${this.#runtime.name} could not start ${this.id}: ${state.exit.detail}`, {
        details: { serviceId: this.id, target: "oci" },
      });
    }
  }

  async stop(options?: StopOptions): Promise<void> {
    // runc reaps a SIGKILLed container itself: after the kill, its end is only waited for.
    if (!(await this.#shim.stop(options?.timeoutMs ?? DEFAULT_STOP_TIMEOUT_MS, () => this.#ensureRunDir()))) await this.wait();
  }

  async state(): Promise<ServiceState> {
    const instance = this.#containerId;
    const view = this.#shim.view();
    if (view.kind === "exited") return view.state;
    if (view.kind === "created") return { phase: "created", instance, since: mtimeOf(this.#l.configFile) ?? this.#createdAt };
    if (view.kind === "ended") return this.#exited(view.end);

    const l = this.#l;
    const rs = await this.#runtime.state(this.#containerId);
    if (rs && rs.status !== "stopped") {
      const pid = rs.pid > 0 ? rs.pid : undefined;
      const since = mtimeOf(l.containerPidFile) ?? this.#createdAt;
      if (rs.status === "running") return { phase: view.stopping ? "stopping" : "running", pid, instance, since };
      if (rs.status === "paused") return { phase: "paused", pid, instance, since };
      return { phase: "starting", instance, since };
    }
    if (view.shimAlive) {
      // Not yet created by the runtime: starting.
      if (!existsSync(l.containerPidFile)) return { phase: "starting", instance, since: this.#createdAt };
      // Gone from the runtime, and the shim is about to write the exit status: wait for it
      // briefly rather than report a phase that is not true ("stopping" when nobody stopped it).
      if ((await this.#shim.exitStatusWithin(EXIT_FILE_WAIT_MS)) !== undefined) return this.state();
      return { phase: view.stopping ? "stopping" : "running", instance, since: mtimeOf(l.containerPidFile) ?? this.#createdAt };
    }
    // The shim is gone without an exit file (killed, or never spawned): the status may be lost.
    return this.#exited(this.#shim.lostEnd());
  }

  logs(options?: LogOptions): AsyncIterable<LogChunk> {
    return this.#shim.logs(options);
  }

  wait(): Promise<ExitInfo> {
    return this.#shim.wait();
  }

  async exec(request: ExecRequest): Promise<ExecProcess> {
    const state = await this.state();
    if (state.phase !== "running") {
      throw new VmctlError("FAILED_PRECONDITION", `cannot exec in ${this.id}: it is ${state.phase}`, {
        details: { serviceId: this.id, target: "oci" },
      });
    }
    if (request.args.length === 0) throw new VmctlError("INVALID_ARGUMENT", "exec needs a command", { details: { field: "args" } });
    return this.#runtime.exec(this.#containerId, request);
  }

  /**
   * The path as the container sees it: while it runs, through its own root (its tmpfs and
   * mounts); otherwise the rootfs directory (the user's own: runc writes in place) and the
   * spec's mounts, until destroy.
   */
  async *copyOut(path: string): AsyncGenerator<Uint8Array> {
    this.#assertNotDestroyed();
    const { pid } = await this.state();
    yield* packContainerPath({ rootfs: this.#spec.rootfs, mounts: this.#spec.mounts ?? [], path, pid });
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
    if (this.#shim.destroyed) return;
    const l = this.#l;
    const res = this.#ctx.resources;
    // Let the shim's runc reap the container, delete it and write the exit status.
    await this.#shim.kill();
    await this.#runtime.delete(this.#containerId);
    await this.#shim.reap();
    await this.#shim.finishDestroy();
    res.release(`${this.#runtime.name}-container`, this.#containerId);
    res.release("process", `shim:${this.#containerId}`);
    for (const dir of [l.bundleDir, l.runDir]) {
      await rm(dir, { recursive: true, force: true });
      res.release("dir", dir);
    }
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
    if (this.#shim.destroyed) {
      throw new VmctlError("FAILED_PRECONDITION", `${this.id} was destroyed`, { details: { serviceId: this.id } });
    }
  }

  async #ensureRunDir(): Promise<void> {
    this.#ctx.resources.intend(ledger.dir(this.#l.runDir));
    await mkdir(this.#l.runDir, { recursive: true });
  }

  #exited(end: ShimEnd): ServiceState {
    const l = this.#l;
    return this.#shim.exited(interpretExit({ ...end, started: existsSync(l.containerPidFile), runtimeError: runtimeError(l.runtimeLogFile) }));
  }
}
