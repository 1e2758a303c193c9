// One lxc service. All of its state lives in files under ctx.serviceDir (see layout.ts),
// in the container's config under the private lxcpath, and in the shim's process, so a
// controller made by adopt() in a new orchestrator process sees exactly what the
// original one would have. The shim, its files, stop and waiting are the kit's
// ShimSupervisor; this file says what is LXC's own.
import { existsSync } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { serviceLabels, VmctlError } from "@vmctl/core/contract";
import type { ExecProcess, ExecRequest, ExitInfo, JsonValue, LogChunk, LogOptions, ServiceController, ServiceState, StopOptions, TargetContext } from "@vmctl/core/contract";
import { isDirectory, mtimeOf, packContainerPath, readIntFile, readJsonFile, ShimSupervisor, writeAtomic, type ShimEnd } from "@vmctl/core/target-kit";
import { DEFAULT_PATH, type CgroupVersion, type ConfigOptions } from "./config.js";
import { LxcContainer, TemplateFailed } from "./container.js";
import { interpretExit } from "./exit.js";
import { hostnameFor, ledger, type ServiceLayout } from "./layout.js";
import { commandMissing } from "./rootfs.js";
import { legacyAddress, releaseLegacy } from "./legacy-bridge.js";
import { checkAttachment } from "./network.js";
import { SHIM_NAME, workloadPid } from "./shim.js";
import { lxcError, type LxcTools } from "./tools.js";
import type { LxcSpec } from "./spec.js";

const DEFAULT_STOP_TIMEOUT_MS = 10_000;

export interface LxcControllerOptions {
  readonly id: string;
  readonly spec: LxcSpec;
  readonly ctx: TargetContext;
  readonly tools: LxcTools;
  /** The LXC container name ("vmctl-" + service id). */
  readonly name: string;
  /** The container's directory under the lxcpath (config; a template's rootfs). */
  readonly containerDir: string;
  readonly layout: ServiceLayout;
  /** The template script's absolute path, for a template spec. */
  readonly templatePath?: string | undefined;
  readonly commonConf?: string | undefined;
  readonly cgroup: CgroupVersion;
  /** Where the old bridge networking kept its address files (legacy-bridge.ts): a record made before may hold one. */
  readonly legacyAddresses: string;
  /** For adopt(): the ledger says start() had begun (the shim was intended). */
  readonly startRequested?: boolean;
}

export class LxcController implements ServiceController {
  readonly id: string;
  readonly #o: LxcControllerOptions;
  readonly #spec: LxcSpec;
  readonly #ctx: TargetContext;
  readonly #tools: LxcTools;
  readonly #name: string;
  readonly #l: ServiceLayout;
  readonly #createdAt = new Date();
  readonly #shim: ShimSupervisor;
  readonly #container: LxcContainer;

  constructor(options: LxcControllerOptions) {
    this.id = options.id;
    this.#o = options;
    this.#spec = options.spec;
    this.#ctx = options.ctx;
    this.#tools = options.tools;
    this.#name = options.name;
    this.#l = options.layout;
    this.#container = new LxcContainer(options.name, options.containerDir, options.spec, options.tools, options.ctx.log, options.templatePath);
    this.#shim = new ShimSupervisor({
      identity: { name: SHIM_NAME, tag: options.name },
      files: { ...options.layout, pidFile: options.layout.shimPidFile },
      log: options.ctx.log,
      startRequested: options.startRequested,
      workload: {
        state: () => this.state(),
        started: () => existsSync(this.#l.initPidFile),
        deliver: (signal) => this.#deliver(signal),
        unpause: () => this.#thaw(),
        endFile: options.layout.failedFile,
      },
    });
  }

  /** The LXC container name ("vmctl-" + service id). */
  get containerName(): string {
    return this.#name;
  }

  async prepare(): Promise<void> {
    this.#assertNotDestroyed();
    // Prepared already: the run dir and a complete config exist.
    if (existsSync(this.#l.runDir) && this.#container.complete()) return;
    const spec = this.#spec;
    if (spec.rootfs !== undefined && !isDirectory(spec.rootfs)) throw this.#error("FAILED_PRECONDITION", `rootfs ${spec.rootfs} is not a directory (any more)`, "rootfs");
    const template = this.#o.templatePath;
    if (spec.template !== undefined && (template === undefined || !existsSync(template))) throw this.#error("NOT_FOUND", `LXC template "${spec.template}" is not installed`, "template");
    // A bad attachment refuses before anything is made.
    if (this.#ctx.network !== undefined) checkAttachment(this.#ctx.network.attachment);
    const res = this.#ctx.resources;
    await this.#ensureRunDir();
    res.intend(ledger.container(this.#name, this.#tools.lxcpath, spec.template !== undefined));
    try {
      await this.#container.make({ ...this.#configOptions(), network: this.#ctx.network?.attachment }, this.#l.runDir);
    } catch (err) {
      if (!(err instanceof TemplateFailed)) throw err;
      res.release("lxc-container", this.#name);
      throw this.#error("FAILED_PRECONDITION", err.message, "template", err.cause);
    }
  }

  async start(): Promise<void> {
    this.#assertNotDestroyed();
    if (this.#shim.settled()) {
      await this.#shim.untilStartedOrExited();
      return;
    }
    await this.prepare();
    const l = this.#l;
    if (this.#spec.rootfs !== undefined) {
      const missing = commandMissing(this.#spec.rootfs, this.#spec);
      if (missing) {
        writeAtomic(l.failedFile, JSON.stringify({ detail: missing }));
        throw this.#error("FAILED_PRECONDITION", missing, "args[0]");
      }
    }
    // LXC makes the host side of the veth under the engine's name: one a crash left (LXC
    // killed between making the pair and moving its peer) would fail the start.
    if (this.#ctx.network !== undefined) await this.#ctx.network.deleteDevice();
    this.#ctx.resources.intend(ledger.shim(this.#name, l.shimPidFile));
    const shim = this.#shim.launch(this.#tools.executeCommand(this.#name, l.lxcLogFile, this.#spec.args));
    writeAtomic(l.shimPidFile, `${shim.pid}\n`);
    this.#ctx.resources.intend(ledger.shim(this.#name, l.shimPidFile, shim));
    this.#ctx.log.debug("lxc container starting", { name: this.#name, shimPid: shim.pid });

    await this.#shim.untilStartedOrExited();
    const state = await this.state();
    if (state.exit?.reason === "failed") {
      throw this.#error("FAILED_PRECONDITION", `LXC could not start ${this.id}: ${state.exit.detail}`);
    }
  }

  async stop(options?: StopOptions): Promise<void> {
    if (await this.#shim.stop(options?.timeoutMs ?? DEFAULT_STOP_TIMEOUT_MS, () => this.#ensureRunDir())) return;
    await this.#tools.kill(this.#name);
    await this.wait();
  }

  async state(): Promise<ServiceState> {
    const instance = this.#name;
    const view = this.#shim.view();
    if (view.kind === "exited") return view.state;
    const l = this.#l;
    const refused = readJsonFile<{ detail: string }>(l.failedFile);
    if (refused) return this.#exited({ ...this.#shim.lostEnd(), at: mtimeOf(l.failedFile) ?? new Date() }, refused.detail);
    if (view.kind === "created") return { phase: "created", instance, since: mtimeOf(this.#container.configFile) ?? this.#createdAt };
    if (view.kind === "ended") return this.#exited(view.end);
    if (!view.shimAlive) return this.#exited(this.#shim.lostEnd());

    const init = readIntFile(l.initPidFile);
    if (init === undefined) return { phase: "starting", instance, since: this.#createdAt };
    const since = mtimeOf(l.initPidFile) ?? this.#createdAt;
    const addresses = this.#addresses();
    // Only a container we froze can be frozen (asking LXC costs a process: not on the hot path).
    if (existsSync(l.pausedFile) && /FROZEN|FREEZING/.test((await this.#tools.state(this.#name)) ?? "")) {
      return { phase: "paused", pid: init, instance, since, ...addresses };
    }
    return { phase: view.stopping ? "stopping" : "running", pid: init, instance, since, ...addresses };
  }

  logs(options?: LogOptions): AsyncIterable<LogChunk> {
    return this.#shim.logs(options);
  }

  wait(): Promise<ExitInfo> {
    return this.#shim.wait();
  }

  async exec(request: ExecRequest): Promise<ExecProcess> {
    const args = request.args;
    if (args.length === 0) throw new VmctlError("INVALID_ARGUMENT", "exec needs a command", { details: { field: "args" } });
    const state = await this.state();
    if (state.phase !== "running") throw this.#error("FAILED_PRECONDITION", `cannot exec in ${this.id}: it is ${state.phase}`);
    const env = { PATH: DEFAULT_PATH, ...this.#spec.env };
    // lxc-attach has no working-directory option: a shell in the container changes to it.
    const workdir = this.#spec.workdir;
    const command = workdir === undefined ? args : ["/bin/sh", "-c", 'cd "$0" && exec "$@"', workdir, ...args];
    return this.#tools.attach(this.#name, request, command, env);
  }

  /** As the container sees it: through its init's root while it runs, else its rootfs and the spec's mounts (until destroy). */
  async *copyOut(path: string): AsyncGenerator<Uint8Array> {
    this.#assertNotDestroyed();
    yield* packContainerPath({ rootfs: this.#container.rootfs, mounts: this.#spec.mounts ?? [], path, pid: (await this.state()).pid });
  }

  async pause(): Promise<void> {
    const state = await this.state();
    if (state.phase === "paused") return;
    if (state.phase !== "running") throw this.#error("FAILED_PRECONDITION", `cannot pause ${this.id}: it is ${state.phase}`);
    // Marked first: a crash right after the freeze must still read as paused.
    writeAtomic(this.#l.pausedFile, "");
    try {
      await this.#tools.freeze(this.#name);
    } catch (err) {
      await rm(this.#l.pausedFile, { force: true });
      throw err;
    }
  }

  async resume(): Promise<void> {
    const state = await this.state();
    if (state.phase === "running") return;
    if (state.phase !== "paused") throw this.#error("FAILED_PRECONDITION", `cannot resume ${this.id}: it is ${state.phase}`);
    await this.#thaw();
  }

  async destroy(): Promise<void> {
    if (this.#shim.destroyed) return;
    const l = this.#l;
    const res = this.#ctx.resources;
    // Let init.lxc end, lxc-execute return, and the shim record the status.
    if (!(await this.#shim.kill())) await this.#tools.kill(this.#name);
    await this.#shim.reap();
    if (this.#shim.launched() && !existsSync(l.exitFile)) {
      // The shim died before lxc-execute (someone killed it): the container may still run.
      await this.#tools.kill(this.#name);
    }
    await this.#shim.finishDestroy();
    await this.#container.remove();
    res.release("lxc-container", this.#name);
    res.release("process", `shim:${this.#name}`);
    // The engine deletes a network's host device and releases the lease after this; only
    // what a service made before that change holds is given back here.
    if (this.#spec.network === "bridge") {
      await releaseLegacy(this.#o.legacyAddresses, this.id).catch((err: unknown) => {
        this.#ctx.log.warn("lxc: could not give back what the old bridge networking held", { error: String(err) });
      });
      res.release("ip-address", this.#name);
    }
    await rm(l.runDir, { recursive: true, force: true });
    res.release("dir", l.runDir);
    this.#ctx.log.debug("lxc container destroyed", { name: this.#name });
  }

  record(): JsonValue {
    return { name: this.#name, lxcpath: this.#tools.lxcpath, template: this.#spec.template !== undefined };
  }

  // ---- internals ----

  #assertNotDestroyed(): void {
    if (this.#shim.destroyed) throw this.#error("FAILED_PRECONDITION", `${this.id} was destroyed`);
  }

  #error(code: "FAILED_PRECONDITION" | "NOT_FOUND", message: string, field?: string, cause?: unknown): VmctlError {
    return new VmctlError(code, field ? `spec.${field}: ${message}` : message, {
      cause,
      details: { serviceId: this.id, target: "lxc", ...(field ? { field: `spec.${field}` } : {}) },
    });
  }

  async #ensureRunDir(): Promise<void> {
    this.#ctx.resources.intend(ledger.dir(this.#l.runDir));
    await mkdir(this.#l.runDir, { recursive: true });
  }

  #configOptions(): ConfigOptions {
    return {
      serviceId: this.id,
      hostname: hostnameFor(this.id),
      commonConf: this.#o.commonConf,
      cgroup: this.#o.cgroup,
      initPidFile: this.#l.initPidFile,
      labels: serviceLabels(this.#ctx.ownerLabels, this.id),
    };
  }

  /** `addresses` while it runs: the leased one, or (a record from before) the old pool's. */
  #addresses(): { addresses?: string[] } {
    const address = this.#ctx.network?.attachment.address ?? (this.#spec.network === "bridge" ? legacyAddress(this.#o.legacyAddresses, this.id) : undefined);
    return address === undefined ? {} : { addresses: [address] };
  }

  #exited(end: ShimEnd, refused?: string): ServiceState {
    const l = this.#l;
    return this.#shim.exited(interpretExit({ ...end, started: existsSync(l.initPidFile), lxcError: lxcError(l.lxcLogFile), refused }));
  }

  async #thaw(): Promise<void> {
    await this.#tools.unfreeze(this.#name);
    await rm(this.#l.pausedFile, { force: true });
  }

  /**
   * Sends the signal to the workload — init.lxc's first child — rather than to init.lxc:
   * on SIGTERM init.lxc itself escalates to SIGKILL after one second, which would cut
   * short a graceful stop, and a SIGKILL to init.lxc loses the workload's exit status.
   */
  async #deliver(signal: "SIGTERM" | "SIGKILL"): Promise<void> {
    const workload = await workloadPid(this.#l.initPidFile, this.#shim.pid());
    if (workload !== undefined) {
      try {
        process.kill(workload, signal);
      } catch {
        // ended meanwhile
      }
      return;
    }
    // No workload to signal (init.lxc is gone, or never forked it): make sure the container ends.
    if (signal === "SIGKILL" && (await this.#shim.exitIfEnded()) === undefined) await this.#tools.kill(this.#name);
  }
}
