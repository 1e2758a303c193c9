// One lxc service. All of its state lives in files under ctx.serviceDir (see layout.ts),
// in the container's config under the private lxcpath, and in the shim's process, so a
// controller made by adopt() in a new orchestrator process sees exactly what the
// original one would have.
import { existsSync, readFileSync } from "node:fs";
import { appendFile, mkdir, rm, writeFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { SERVICE_LABEL, VmctlError } from "@vmctl/core/contract";
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
import { changeIn, followFiles, isDirectory, mtimeOf, readIntFile, readJsonFile, writeAtomic } from "@vmctl/core/target-kit";
import { baseConfig, CONFIG_END_MARKER, DEFAULT_PATH, rootfsConfig, serviceBlock, type ConfigOptions } from "./config.js";
import { interpretExit, type ExitEvidence } from "./exit.js";
import { hostnameFor, ledger, type ServiceLayout } from "./layout.js";
import { attachmentFor, hostVethFor, type AddressPool, type BridgeAttachment, type BridgeTool } from "./network.js";
import { commandMissing, makeMountPoints, rootfsOf } from "./rootfs.js";
import { childrenOf, isShim, spawnShim, verifiedInit } from "./shim.js";
import type { CgroupVersion } from "./config.js";
import { lxcMessage, type LxcTools } from "./tools.js";
import type { LxcSpec } from "./spec.js";

/** The longest wait() / stop() / logs({ follow }) go without looking at the files again (inotify wakes them sooner). */
const POLL_MS = 50;
const DEFAULT_STOP_TIMEOUT_MS = 10_000;
/** How long init.lxc may take to fork the workload after the start-host hook ran. */
const WORKLOAD_FORK_MS = 500;

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
  /** The managed bridge: its address pool, and iproute2 to make the bridge (absent: not available here). */
  readonly network?: { readonly pool: AddressPool; readonly bridge?: BridgeTool | undefined } | undefined;
  /** For adopt(): the ledger says start() had begun (the shim was intended). */
  readonly startRequested?: boolean;
}

interface StopRecord {
  beforeStart?: boolean;
  signals: string[];
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
  #startRequested: boolean;
  #shimPid: number | undefined;
  #exit: ExitInfo | undefined;
  #destroyed = false;
  /** The address on the managed bridge, once claimed (or found in the pool after a restart). */
  #address: string | undefined;

  constructor(options: LxcControllerOptions) {
    this.id = options.id;
    this.#o = options;
    this.#spec = options.spec;
    this.#ctx = options.ctx;
    this.#tools = options.tools;
    this.#name = options.name;
    this.#l = options.layout;
    this.#startRequested = options.startRequested ?? false;
  }

  /** The LXC container name ("vmctl-" + service id). */
  get containerName(): string {
    return this.#name;
  }

  get #configFile(): string {
    return `${this.#o.containerDir}/config`;
  }

  async prepare(): Promise<void> {
    this.#assertNotDestroyed();
    if (this.#prepared()) return;
    const spec = this.#spec;
    if (spec.rootfs !== undefined && !isDirectory(spec.rootfs)) {
      throw this.#error("FAILED_PRECONDITION", `rootfs ${spec.rootfs} is not a directory (any more)`, "rootfs");
    }
    if (spec.template !== undefined && (this.#o.templatePath === undefined || !existsSync(this.#o.templatePath))) {
      throw this.#error("NOT_FOUND", `LXC template "${spec.template}" is not installed`, "template");
    }
    const res = this.#ctx.resources;
    // The address first: an exhausted subnet refuses before anything else is made.
    const network = this.#bridged() ? this.#claimAddress() : undefined;
    res.intend(ledger.dir(this.#l.runDir));
    await mkdir(this.#l.runDir, { recursive: true });
    res.intend(ledger.container(this.#name, this.#tools.lxcpath, spec.template !== undefined));
    // A half-made container (a crash mid-prepare) is removed and made again.
    await this.#removeContainer();
    const opts = { ...this.#configOptions(), network };
    if (spec.rootfs !== undefined) {
      await mkdir(this.#o.containerDir, { recursive: true, mode: 0o700 });
      writeAtomic(this.#configFile, rootfsConfig({ ...spec, rootfs: spec.rootfs }, opts));
    } else {
      const base = `${this.#l.runDir}/base.conf`;
      await writeFile(base, baseConfig(opts));
      try {
        await this.#tools.create(this.#name, this.#o.templatePath!, base, spec.templateArgs ?? []);
      } catch (err) {
        // Nothing half-made stays on the target: the template's partial rootfs goes too.
        await this.#removeContainer().catch(() => undefined);
        res.release("lxc-container", this.#name);
        throw this.#error("FAILED_PRECONDITION", (err as Error).message, "template", err);
      }
      await appendFile(this.#configFile, `\n${serviceBlock(spec, opts)}`);
    }
    await makeMountPoints(rootfsOf(this.#configFile, this.#o.containerDir), spec);
  }

  async start(): Promise<void> {
    this.#assertNotDestroyed();
    if (this.#launched() || this.#readStop()?.beforeStart || existsSync(this.#l.failedFile)) {
      await this.#untilRunningOrExited();
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
    if (this.#bridged()) await this.#readyBridge();
    this.#startRequested = true;
    this.#ctx.resources.intend(ledger.shim(this.#name, l.shimPidFile));
    const shim = spawnShim(l, this.#tools.executeCommand(this.#name, l.lxcLogFile, this.#spec.args));
    this.#shimPid = shim.pid;
    writeAtomic(l.shimPidFile, `${shim.pid}\n`);
    this.#ctx.resources.intend(ledger.shim(this.#name, l.shimPidFile, shim));
    this.#ctx.log.debug("lxc container starting", { name: this.#name, shimPid: shim.pid });

    await this.#untilRunningOrExited();
    const state = await this.state();
    if (state.exit?.reason === "failed") {
      throw this.#error("FAILED_PRECONDITION", `LXC could not start ${this.id}: ${state.exit.detail}`);
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
    if (state.phase === "paused") await this.#thaw();

    await this.#signal("SIGTERM");
    if (await this.#exitedWithin(timeoutMs)) return;
    this.#ctx.log.info("lxc workload ignored SIGTERM; killing it", { name: this.#name, timeoutMs });
    await this.#signal("SIGKILL");
    if (await this.#exitedWithin(DEFAULT_STOP_TIMEOUT_MS)) return;
    await this.#tools.kill(this.#name);
    await this.wait();
  }

  async state(): Promise<ServiceState> {
    const instance = this.#name;
    if (this.#exit) return { phase: "exited", exit: this.#exit, instance, since: this.#exit.at };
    if (this.#destroyed) {
      const at = new Date();
      return { phase: "exited", exit: { code: null, reason: "stopped", detail: "destroyed", at }, instance, since: at };
    }
    const l = this.#l;
    const refused = readJsonFile<{ detail: string }>(l.failedFile);
    if (refused) return this.#exited(interpretExit({ ...this.#evidence(undefined, undefined, l.failedFile), refused: refused.detail }));
    const stop = this.#readStop();
    if (!this.#startRequested && !this.#launched()) {
      if (stop?.beforeStart) return this.#exited(interpretExit(this.#evidence(undefined, stop, l.stopFile)));
      return { phase: "created", instance, since: mtimeOf(this.#configFile) ?? this.#createdAt };
    }

    const shimPid = this.#currentShimPid();
    const shimAlive = shimPid !== undefined && isShim(shimPid, this.#name);
    // Read the exit file only after looking at the shim: it writes the file, then dies.
    const status = readIntFile(l.exitFile);
    if (status !== undefined) return this.#exited(interpretExit(this.#evidence(status, stop, l.exitFile)));
    if (shimAlive) {
      const init = readIntFile(l.initPidFile);
      if (init === undefined) return { phase: "starting", instance, since: this.#createdAt };
      const since = mtimeOf(l.initPidFile) ?? this.#createdAt;
      // Only a container we froze can be frozen (asking LXC costs a process: not on the hot path).
      if (existsSync(l.pausedFile) && /FROZEN|FREEZING/.test((await this.#tools.state(this.#name)) ?? "")) {
        return { phase: "paused", pid: init, instance, since, ...this.#addresses() };
      }
      const stopping = (stop?.signals.length ?? 0) > 0;
      return { phase: stopping ? "stopping" : "running", pid: init, instance, since, ...this.#addresses() };
    }
    // The shim is gone without an exit file (killed, or never spawned): the status is lost.
    const again = readIntFile(l.exitFile);
    if (again !== undefined) return this.#exited(interpretExit(this.#evidence(again, stop, l.exitFile)));
    return this.#exited(interpretExit(this.#evidence(undefined, stop, l.shimPidFile)));
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
    if (args.length === 0) throw new VmctlError("INVALID_ARGUMENT", "exec needs a command", { details: { field: "args" } });
    const state = await this.state();
    if (state.phase !== "running") throw this.#error("FAILED_PRECONDITION", `cannot exec in ${this.id}: it is ${state.phase}`);
    const env = { PATH: DEFAULT_PATH, ...this.#spec.env };
    // lxc-attach has no working-directory option: a shell in the container changes to it.
    const workdir = this.#spec.workdir;
    const command = workdir === undefined ? args : ["/bin/sh", "-c", 'cd "$0" && exec "$@"', workdir, ...args];
    const r = await this.#tools.attach(this.#name, command, env);
    return { code: r.code, stdout: new Uint8Array(r.stdout), stderr: new Uint8Array(r.stderr) };
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
    if (this.#destroyed) return;
    const l = this.#l;
    const res = this.#ctx.resources;
    let state = await this.state().catch(() => undefined);
    if (state?.phase === "starting") {
      await this.#untilRunningOrExited();
      state = await this.state().catch(() => undefined);
    }
    if (state && state.phase !== "exited" && state.phase !== "created") {
      if (state.phase === "paused") await this.#thaw().catch(() => undefined);
      await this.#signal("SIGKILL");
      // Let init.lxc end, lxc-execute return, and the shim record the status.
      if (!(await this.#exitedWithin(DEFAULT_STOP_TIMEOUT_MS))) await this.#tools.kill(this.#name);
    }
    await this.#reapShim();
    if (this.#launched() && !existsSync(l.exitFile)) {
      // The shim died before lxc-execute (someone killed it): the container may still run.
      await this.#tools.kill(this.#name);
    }
    if (!this.#exit) {
      const final = await this.state().catch(() => undefined);
      if (final?.exit) this.#exit = final.exit;
    }
    await this.#removeContainer();
    res.release("lxc-container", this.#name);
    res.release("process", `shim:${this.#name}`);
    if (this.#bridged()) await this.#releaseAddress();
    await rm(l.runDir, { recursive: true, force: true });
    res.release("dir", l.runDir);
    this.#destroyed = true;
    this.#ctx.log.debug("lxc container destroyed", { name: this.#name });
  }

  record(): JsonValue {
    return { name: this.#name, lxcpath: this.#tools.lxcpath, template: this.#spec.template !== undefined };
  }

  // ---- internals ----

  #assertNotDestroyed(): void {
    if (this.#destroyed) throw this.#error("FAILED_PRECONDITION", `${this.id} was destroyed`);
  }

  #error(code: "FAILED_PRECONDITION" | "NOT_FOUND", message: string, field?: string, cause?: unknown): VmctlError {
    return new VmctlError(code, field ? `spec.${field}: ${message}` : message, {
      cause,
      details: { serviceId: this.id, target: "lxc", ...(field ? { field: `spec.${field}` } : {}) },
    });
  }

  #configOptions(): ConfigOptions {
    return {
      serviceId: this.id,
      hostname: hostnameFor(this.id),
      commonConf: this.#o.commonConf,
      cgroup: this.#o.cgroup,
      initPidFile: this.#l.initPidFile,
      labels: { ...this.#ctx.ownerLabels, [SERVICE_LABEL]: this.id },
    };
  }

  #bridged(): boolean {
    return this.#spec.network === "bridge";
  }

  #pool(): AddressPool {
    const pool = this.#o.network?.pool;
    if (pool === undefined) throw this.#error("FAILED_PRECONDITION", 'network "bridge" is not available on this host', "network");
    return pool;
  }

  /** Records the address in the ledger, claims it (intend → make), and records which one it is. */
  #claimAddress(): BridgeAttachment {
    const pool = this.#pool();
    const res = this.#ctx.resources;
    res.intend(ledger.address(this.#name, pool.dir));
    let address: string;
    try {
      address = pool.claim(this.id);
    } catch (err) {
      res.release("ip-address", this.#name);
      throw err;
    }
    res.intend(ledger.address(this.#name, pool.dir, address));
    this.#address = address;
    return attachmentFor(pool.net, this.id, address);
  }

  /** Gives the address back to the pool and removes a host-side veth that outlived the container. */
  async #releaseAddress(): Promise<void> {
    const bridge = this.#o.network?.bridge;
    if (bridge) {
      await bridge.remove(hostVethFor(this.id)).catch((err: unknown) => {
        this.#ctx.log.warn("lxc: could not remove the host-side veth", { veth: hostVethFor(this.id), error: String(err) });
      });
    }
    const pool = this.#o.network?.pool;
    const address = this.#address ?? pool?.lookup(this.id);
    if (pool && address !== undefined) pool.release(this.id, address);
    this.#address = undefined;
    this.#ctx.resources.release("ip-address", this.#name);
  }

  /** The bridge exists and is up, and no veth a crash left behind holds this service's host-side name. */
  async #readyBridge(): Promise<void> {
    const bridge = this.#o.network?.bridge;
    if (bridge === undefined) throw this.#error("FAILED_PRECONDITION", 'network "bridge" is not available on this host: the ip tool (iproute2) was not found', "network");
    try {
      await bridge.ensure();
      await bridge.remove(hostVethFor(this.id));
    } catch (err) {
      throw this.#error("FAILED_PRECONDITION", (err as Error).message, "network", err);
    }
  }

  /** `addresses` for a running service on the bridge. */
  #addresses(): { addresses?: string[] } {
    if (!this.#bridged()) return {};
    this.#address ??= this.#o.network?.pool.lookup(this.id);
    return this.#address === undefined ? {} : { addresses: [this.#address] };
  }

  /** The run dir and a complete config exist (prepare ran to its end). */
  #prepared(): boolean {
    if (!existsSync(this.#l.runDir)) return false;
    try {
      return readFileSync(this.#configFile, "utf8").includes(CONFIG_END_MARKER);
    } catch {
      return false;
    }
  }

  /**
   * Removes the container's directory. A template made its rootfs, so lxc-destroy removes
   * both; over a user's rootfs only our dir goes: lxc-destroy would delete the user's
   * rootfs directory too (it does for every `dir:` rootfs).
   */
  async #removeContainer(): Promise<void> {
    if (!existsSync(this.#o.containerDir)) return;
    if (this.#spec.template !== undefined && existsSync(this.#configFile)) {
      try {
        await this.#tools.destroy(this.#name);
      } catch (err) {
        this.#ctx.log.warn("lxc-destroy failed; removing the container dir", { name: this.#name, error: String(err) });
      }
    }
    await rm(this.#o.containerDir, { recursive: true, force: true });
  }

  /** The shim was spawned at some point (by this process or an earlier one). */
  #launched(): boolean {
    return this.#shimPid !== undefined || existsSync(this.#l.shimPidFile) || existsSync(this.#l.exitFile);
  }

  #currentShimPid(): number | undefined {
    return readIntFile(this.#l.shimPidFile) ?? this.#shimPid;
  }

  #exited(exit: ExitInfo): ServiceState {
    this.#exit = exit;
    return { phase: "exited", exit, instance: this.#name, since: exit.at };
  }

  #evidence(status: number | undefined, stop: StopRecord | undefined, timeFile: string): ExitEvidence {
    return {
      status,
      started: existsSync(this.#l.initPidFile),
      stopSignals: stop?.signals ?? [],
      stoppedBeforeStart: stop?.beforeStart ?? false,
      lxcError: lxcError(this.#l.lxcLogFile),
      at: mtimeOf(timeFile) ?? new Date(),
    };
  }

  #readStop(): StopRecord | undefined {
    return readJsonFile<StopRecord>(this.#l.stopFile);
  }

  async #thaw(): Promise<void> {
    await this.#tools.unfreeze(this.#name);
    await rm(this.#l.pausedFile, { force: true });
  }

  /**
   * Records the signal (so the exit reads as "stopped" even after a restart), then sends
   * it to the workload — init.lxc's first child — rather than to init.lxc: on SIGTERM
   * init.lxc itself escalates to SIGKILL after one second, which would cut short a
   * graceful stop, and a SIGKILL to init.lxc loses the workload's exit status.
   */
  async #signal(signal: "SIGTERM" | "SIGKILL"): Promise<void> {
    const stop = this.#readStop() ?? { signals: [] };
    if (!stop.signals.includes(signal)) stop.signals.push(signal);
    writeAtomic(this.#l.stopFile, JSON.stringify(stop));
    const workload = await this.#workloadPid();
    if (workload !== undefined) {
      try {
        process.kill(workload, signal);
      } catch {
        // ended meanwhile
      }
      return;
    }
    // No workload to signal (init.lxc is gone, or never forked it): make sure the container ends.
    if (signal === "SIGKILL" && (await this.#exitIfEnded()) === undefined) await this.#tools.kill(this.#name);
  }

  /** The workload's host pid: init.lxc's oldest child, once init is verified to be this container's. */
  async #workloadPid(): Promise<number | undefined> {
    const init = readIntFile(this.#l.initPidFile);
    const shim = this.#currentShimPid();
    if (init === undefined || shim === undefined || !verifiedInit(init, shim)) return undefined;
    const deadline = Date.now() + WORKLOAD_FORK_MS;
    for (;;) {
      const first = childrenOf(init)[0];
      if (first !== undefined || Date.now() >= deadline) return first;
      await sleep(5);
    }
  }

  /**
   * The exit, once there is one. Cheaper than state() for polling: while the shim
   * lives and has written no exit file, the service has not ended.
   */
  async #exitIfEnded(): Promise<ExitInfo | undefined> {
    if (!this.#exit && !this.#destroyed && !existsSync(this.#l.exitFile) && !existsSync(this.#l.failedFile)) {
      const shimPid = this.#currentShimPid();
      if (shimPid !== undefined && isShim(shimPid, this.#name)) return undefined;
    }
    return (await this.state()).exit;
  }

  async #exitedWithin(ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    for (;;) {
      if ((await this.#exitIfEnded()) !== undefined) return true;
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await changeIn(this.#l.runDir, Math.min(POLL_MS, left));
    }
  }

  /** Until the container is up (the start-host hook wrote init's pid) or the service has exited. */
  async #untilRunningOrExited(): Promise<void> {
    for (;;) {
      if (existsSync(this.#l.initPidFile)) return;
      const state = await this.state();
      if (state.phase === "exited" || state.phase === "created") return;
      await changeIn(this.#l.runDir, POLL_MS / 2);
    }
  }

  /** Waits for the shim to end; kills it if it outlives its container. */
  async #reapShim(): Promise<void> {
    const pid = this.#currentShimPid();
    if (pid === undefined) return;
    const deadline = Date.now() + DEFAULT_STOP_TIMEOUT_MS;
    while (isShim(pid, this.#name)) {
      if (Date.now() >= deadline) {
        this.#ctx.log.warn("lxc shim outlived its container; killing it", { pid });
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
        return;
      }
      await changeIn(this.#l.runDir, POLL_MS);
    }
  }
}

/** LXC's root-cause error from its log file, if it logged one. */
function lxcError(logFile: string): string | undefined {
  try {
    const text = readFileSync(logFile, "utf8");
    return text.trim() ? lxcMessage(text) : undefined;
  } catch {
    return undefined;
  }
}
