// One docker service: one container, named after the service, labelled with its owner.
// Docker keeps the facts (status, exit code, output); the only file of the controller's
// own is the stop record in ctx.serviceDir, so a controller made by adopt() in a new
// orchestrator process sees exactly what the original one would have.
import { mkdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { VmctlError } from "@vmctl/core/contract";
import { writeAtomic } from "@vmctl/core/target-kit";
import type {
  ErrorDetails,
  ExecResult,
  ExitInfo,
  JsonValue,
  LogChunk,
  LogOptions,
  ProgressSink,
  ServiceController,
  ServiceState,
  StopOptions,
  TargetContext,
} from "@vmctl/core/contract";
import { containerConfig } from "./config.js";
import { httpStatusOf, type ContainerInfo, type DockerEngine } from "./engine.js";
import { interpretExit } from "./exit.js";
import type { ImageResolver, ResolvedImage } from "./images.js";
import { CONTAINER_KIND, containerResource, isServiceContainer, labelsFor, stopFileOf } from "./naming.js";
import type { DockerSpec } from "./spec.js";

const DEFAULT_STOP_TIMEOUT_MS = 10_000;
/** How often wait() and logs({ follow }) look again at a container not started yet. */
const POLL_MS = 50;

export interface DockerControllerOptions {
  readonly id: string;
  readonly spec: DockerSpec;
  readonly ctx: TargetContext;
  readonly engine: DockerEngine;
  readonly images: ImageResolver;
  /** The container name (containerNameFor). */
  readonly name: string;
  /** For adopt(): the container this service owns, when it was made. */
  readonly containerId?: string;
  /** For adopt(): the image prepare() resolved. */
  readonly image?: ResolvedImage;
}

/** What record() returns: enough to find the container without the ledger. */
export type DockerRecord = {
  containerName: string;
  containerId: string | null;
  socket: string;
  image: { id: string; source: string; loadedTags: string[] } | null;
};

interface StopRecord {
  beforeStart?: boolean;
  signals: string[];
}

export class DockerController implements ServiceController {
  readonly id: string;
  readonly #spec: DockerSpec;
  readonly #ctx: TargetContext;
  readonly #engine: DockerEngine;
  readonly #images: ImageResolver;
  readonly #name: string;
  readonly #createdAt = new Date();
  readonly #details: ErrorDetails;
  #containerId: string | undefined;
  #image: ResolvedImage | undefined;
  #preparing: Promise<void> | undefined;
  #starting: Promise<void> | undefined;
  #destroying: Promise<void> | undefined;
  #exit: ExitInfo | undefined;
  #destroyed = false;

  constructor(options: DockerControllerOptions) {
    this.id = options.id;
    this.#spec = options.spec;
    this.#ctx = options.ctx;
    this.#engine = options.engine;
    this.#images = options.images;
    this.#name = options.name;
    this.#containerId = options.containerId;
    this.#image = options.image;
    this.#details = { serviceId: options.id, target: "docker" };
  }

  /** The container's name on the daemon. */
  get containerName(): string {
    return this.#name;
  }

  /** The container's id, once prepare() made it. */
  get containerId(): string | undefined {
    return this.#containerId;
  }

  /** Resolves the image (loading an archive) and creates the container. Idempotent. */
  async prepare(progress?: ProgressSink): Promise<void> {
    this.#assertNotDestroyed();
    if (this.#containerId !== undefined) return;
    this.#preparing ??= this.#prepare(progress).finally(() => (this.#preparing = undefined));
    return this.#preparing;
  }

  async start(): Promise<void> {
    this.#assertNotDestroyed();
    // One start at a time: a second `docker start` of a container that already ran and
    // exited would run it again.
    this.#starting ??= this.#start().finally(() => (this.#starting = undefined));
    return this.#starting;
  }

  async #start(): Promise<void> {
    await this.prepare();
    if (this.#readStop()?.beforeStart) return;
    const id = this.#containerId as string;
    const info = await this.#engine.inspect(id);
    // Started before (running, or ran and ended: it is never restarted), failed to start
    // before (state() reports why), or gone.
    if (!info || info.startedAt !== undefined || info.status !== "created" || info.error !== "") return;
    try {
      await this.#engine.start(id);
    } catch (err) {
      const e = this.#engine.error(err, `start container ${this.#name}`, this.#details);
      if (e.code === "UNAVAILABLE" || e.code === "PERMISSION_DENIED") throw e;
      throw new VmctlError("FAILED_PRECONDITION", `docker could not start ${this.id}: ${e.message}`, { cause: err, details: this.#details });
    }
    this.#ctx.log.debug("docker container started", { container: this.#name });
  }

  async stop(options?: StopOptions): Promise<void> {
    const timeoutMs = options?.timeoutMs ?? DEFAULT_STOP_TIMEOUT_MS;
    const state = await this.state();
    if (state.phase === "exited") return;
    const id = this.#containerId;
    if (state.phase === "created" || id === undefined) {
      this.#writeStop({ beforeStart: true, signals: [] });
      return;
    }
    if (state.phase === "paused") await this.#engine.unpause(id).catch(() => undefined);
    // Not `docker stop`: its grace period is whole seconds; timeoutMs is honoured exactly.
    await this.#signal(id, "SIGTERM");
    if (await this.#exitedWithin(id, timeoutMs)) return;
    this.#ctx.log.info("docker container ignored SIGTERM; killing it", { container: this.#name, timeoutMs });
    await this.#signal(id, "SIGKILL");
    await this.wait();
  }

  async state(): Promise<ServiceState> {
    if (this.#exit) return this.#exited(this.#exit);
    if (this.#destroyed) {
      const at = new Date();
      return { phase: "exited", exit: { code: null, reason: "stopped", detail: "destroyed", at }, since: at };
    }
    const stop = this.#readStop();
    const id = this.#containerId;
    if (id === undefined) {
      if (stop?.beforeStart) return this.#exited(this.#interpret(undefined, stop));
      return { phase: "created", since: this.#createdAt };
    }
    const info = await this.#engine.inspect(id);
    if (!info) {
      return this.#exited({ code: null, reason: "lost", detail: `container ${this.#name} was removed outside vmctl`, at: new Date() });
    }
    const base = { instance: info.id };
    switch (info.status) {
      case "created":
        if (info.error !== "" || stop?.beforeStart) return this.#exited(this.#interpret(info, stop));
        return { ...base, phase: "created", since: info.created };
      case "running":
      case "restarting":
        return {
          ...base,
          phase: (stop?.signals.length ?? 0) > 0 ? "stopping" : "running",
          pid: info.pid > 0 ? info.pid : undefined,
          addresses: info.addresses,
          since: info.startedAt ?? info.created,
        };
      case "paused":
        return { ...base, phase: "paused", pid: info.pid > 0 ? info.pid : undefined, addresses: info.addresses, since: info.startedAt ?? info.created };
      case "removing":
        return { ...base, phase: "stopping", since: info.startedAt ?? info.created };
      default:
        return this.#exited(this.#interpret(info, stop));
    }
  }

  async *logs(options?: LogOptions): AsyncIterable<LogChunk> {
    let follow = options?.follow ?? false;
    if (follow) {
      // Docker's follow of a container that was never started does not end: wait for the start.
      for (;;) {
        const state = await this.state();
        if (state.phase === "exited") follow = false;
        if (state.phase !== "created") break;
        await sleep(POLL_MS);
      }
    }
    const id = this.#containerId;
    if (id === undefined || this.#destroyed) return;
    yield* this.#engine.logs(id, follow);
  }

  async wait(): Promise<ExitInfo> {
    for (;;) {
      const state = await this.state();
      if (state.exit) return state.exit;
      if (state.phase === "created" || this.#containerId === undefined) await sleep(POLL_MS);
      else await this.#engine.waitNotRunning(this.#containerId);
    }
  }

  async exec(args: readonly string[]): Promise<ExecResult> {
    if (args.length === 0) throw new VmctlError("INVALID_ARGUMENT", "exec needs a command", { details: { ...this.#details, field: "args" } });
    const state = await this.state();
    if (state.phase !== "running" || this.#containerId === undefined) {
      throw new VmctlError("FAILED_PRECONDITION", `cannot exec in ${this.id}: it is ${state.phase}`, { details: this.#details });
    }
    return this.#engine.exec(this.#containerId, args);
  }

  async pause(): Promise<void> {
    const state = await this.state();
    if (state.phase === "paused") return;
    if (state.phase !== "running" || this.#containerId === undefined) {
      throw new VmctlError("FAILED_PRECONDITION", `cannot pause ${this.id}: it is ${state.phase}`, { details: this.#details });
    }
    await this.#engine.pause(this.#containerId);
  }

  async resume(): Promise<void> {
    const state = await this.state();
    if (state.phase === "running") return;
    if (state.phase !== "paused" || this.#containerId === undefined) {
      throw new VmctlError("FAILED_PRECONDITION", `cannot resume ${this.id}: it is ${state.phase}`, { details: this.#details });
    }
    await this.#engine.unpause(this.#containerId);
  }

  /** Force-removes the container (never the image) and releases it from the ledger. Idempotent. */
  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    this.#destroying ??= this.#destroy().finally(() => (this.#destroying = undefined));
    return this.#destroying;
  }

  record(): JsonValue {
    const image = this.#image;
    const record: DockerRecord = {
      containerName: this.#name,
      containerId: this.#containerId ?? null,
      socket: this.#engine.socket,
      image: image ? { id: image.id, source: image.source, loadedTags: [...(image.loadedTags ?? [])] } : null,
    };
    return record;
  }

  // ---- internals ----

  async #prepare(progress?: ProgressSink): Promise<void> {
    if (this.#spec.imageArchive !== undefined) progress?.({ phase: "load", message: `docker load ${this.#spec.imageArchive}` });
    const image = this.#image ?? (await this.#images.resolve(this.#spec, this.#details));
    this.#image = image;
    const network = this.#spec.network;
    if (network !== undefined && network !== "none" && !(await this.#engine.networkExists(network))) {
      throw new VmctlError("FAILED_PRECONDITION", `spec.network: Docker network ${network} does not exist on ${this.#engine.socket}`, {
        details: { ...this.#details, field: "spec.network" },
      });
    }
    const resource = { socket: this.#engine.socket, name: this.#name };
    this.#ctx.resources.intend(containerResource(resource));
    const config = containerConfig(this.#spec, { image: image.id, labels: labelsFor(this.id, this.#ctx.ownerLabels) });
    let id: string;
    try {
      id = await this.#engine.create(this.#name, config);
    } catch (err) {
      id = await this.#afterFailedCreate(err);
    }
    this.#ctx.resources.intend(containerResource({ ...resource, id }));
    this.#containerId = id;
    this.#ctx.log.debug("docker container created", { container: this.#name, id, image: image.id });
  }

  /**
   * A create that failed may still have made the container (a 409 from an earlier,
   * interrupted prepare; a connection lost after the daemon acted). Ours by its labels:
   * take it. Nothing there: release the ledger entry, nothing is half-made.
   */
  async #afterFailedCreate(err: unknown): Promise<string> {
    const e = this.#engine.error(err, `create container ${this.#name}`, this.#details);
    const existing = await this.#engine.inspect(this.#name).catch(() => "unknown" as const);
    if (existing === "unknown") throw e; // the daemon is gone: the ledger entry stays, adopt decides later
    if (existing && isServiceContainer(existing.labels, this.id, this.#ctx.ownerLabels)) return existing.id;
    this.#ctx.resources.release(CONTAINER_KIND, this.#name);
    if (existing) {
      throw new VmctlError("ALREADY_EXISTS", `a container named ${this.#name} exists on ${this.#engine.socket} and is not this service's`, {
        cause: err,
        details: this.#details,
      });
    }
    if (httpStatusOf(err) === 400 || httpStatusOf(err) === 500) {
      throw new VmctlError("FAILED_PRECONDITION", `docker refused to create ${this.id}: ${e.message}`, { cause: err, details: this.#details });
    }
    throw e;
  }

  async #destroy(): Promise<void> {
    let id = this.#containerId;
    if (id === undefined) {
      // A prepare interrupted between create and the ledger update: the name finds it.
      const found = await this.#engine.inspect(this.#name);
      if (found && isServiceContainer(found.labels, this.id, this.#ctx.ownerLabels)) id = found.id;
    }
    if (id !== undefined) {
      if (!this.#exit) {
        const final = await this.state().catch(() => undefined);
        if (final?.exit) this.#exit = final.exit;
      }
      await this.#engine.remove(id);
    }
    this.#ctx.resources.release(CONTAINER_KIND, this.#name);
    this.#destroyed = true;
    this.#ctx.log.debug("docker container removed", { container: this.#name });
  }

  #assertNotDestroyed(): void {
    if (this.#destroyed) throw new VmctlError("FAILED_PRECONDITION", `${this.id} was destroyed`, { details: this.#details });
  }

  #exited(exit: ExitInfo): ServiceState {
    this.#exit = exit;
    return { phase: "exited", exit, ...(this.#containerId ? { instance: this.#containerId } : {}), since: exit.at };
  }

  #interpret(info: ContainerInfo | undefined, stop: StopRecord | undefined): ExitInfo {
    return interpretExit({
      exitCode: info?.exitCode ?? 0,
      started: info?.startedAt !== undefined,
      error: info?.error ?? "",
      oomKilled: info?.oomKilled ?? false,
      stopSignals: stop?.signals ?? [],
      stoppedBeforeStart: stop?.beforeStart ?? false,
      at: info?.finishedAt ?? new Date(),
    });
  }

  #readStop(): StopRecord | undefined {
    try {
      return JSON.parse(readFileSync(stopFileOf(this.#ctx.serviceDir), "utf8")) as StopRecord;
    } catch {
      return undefined;
    }
  }

  #writeStop(stop: StopRecord): void {
    const path = stopFileOf(this.#ctx.serviceDir);
    mkdirSync(dirname(path), { recursive: true });
    writeAtomic(path, JSON.stringify(stop));
  }

  /** Records the signal (so the exit reads "stopped", even after a restart), then sends it. */
  async #signal(id: string, signal: string): Promise<void> {
    const stop = this.#readStop() ?? { signals: [] };
    if (!stop.signals.includes(signal)) stop.signals.push(signal);
    this.#writeStop(stop);
    await this.#engine.kill(id, signal);
  }

  async #exitedWithin(id: string, ms: number): Promise<boolean> {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), ms);
    try {
      await this.#engine.waitNotRunning(id, abort.signal);
      return true;
    } catch (err) {
      if (abort.signal.aborted) return false;
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }
}
