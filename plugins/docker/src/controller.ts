// One docker service: one container, named after the service, labelled with its owner.
// Docker keeps the facts (status, exit code, output); the only file of the controller's
// own is the kit's stop record in ctx.serviceDir (naming.ts stopFileOf), so a controller made by
// adopt() in a new orchestrator process sees exactly what the original one would have.
import { setTimeout as sleep } from "node:timers/promises";
import { VmctlError } from "@vmctl/core/contract";
import { readStopRecord, recordStopBeforeStart } from "@vmctl/core/target-kit";
import type {
  ErrorDetails,
  ExecProcess,
  ExecRequest,
  ExitInfo,
  JsonValue,
  LogChunk,
  LogOptions,
  Phase,
  ProgressSink,
  ServiceController,
  ServiceState,
  StopOptions,
  TargetContext,
} from "@vmctl/core/contract";
import { exitOf, readContainer } from "./container-state.js";
import { OpenCopies } from "./copy-out.js";
import { createContainer } from "./create-container.js";
import type { DockerEngine } from "./engine.js";
import { startExecSession } from "./exec-session.js";
import type { ImageResolver, ResolvedImage } from "./images.js";
import { CONTAINER_KIND, isServiceContainer, stopFileOf } from "./naming.js";
import type { DockerSpec } from "./spec.js";
import { terminateContainer } from "./stop-signals.js";

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
  readonly #copies = new OpenCopies();

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
    if (readStopRecord(stopFileOf(this.#ctx.serviceDir))?.beforeStart) return;
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
    // Its exit known, stop() asks Docker nothing: the copies need not make way.
    if (!this.#exit) this.#copies.cut(this.id, "the service is being stopped", this.#details);
    const state = await this.state();
    if (state.phase === "exited") return;
    const id = this.#containerId;
    if (state.phase === "created" || id === undefined) {
      recordStopBeforeStart(stopFileOf(this.#ctx.serviceDir));
      return;
    }
    if (state.phase === "paused") await this.#engine.unpause(id).catch(() => undefined);
    const ended = await terminateContainer({ engine: this.#engine, containerId: id, name: this.#name, serviceDir: this.#ctx.serviceDir, timeoutMs, log: this.#ctx.log });
    if (!ended) await this.wait();
  }

  async state(): Promise<ServiceState> {
    if (this.#exit) return this.#exited(this.#exit);
    if (this.#destroyed) {
      const at = new Date();
      return { phase: "exited", exit: { code: null, reason: "stopped", detail: "destroyed", at }, since: at };
    }
    const stop = readStopRecord(stopFileOf(this.#ctx.serviceDir));
    const id = this.#containerId;
    if (id === undefined) {
      if (stop?.beforeStart) return this.#exited(exitOf(undefined, stop));
      return { phase: "created", since: this.#createdAt };
    }
    const info = await this.#engine.inspect(id);
    if (!info) {
      return this.#exited({ code: null, reason: "lost", detail: `container ${this.#name} was removed outside vmctl`, at: new Date() });
    }
    const reading = readContainer(info, stop);
    return reading.exit ? this.#exited(reading.exit) : reading.state;
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

  async exec(request: ExecRequest): Promise<ExecProcess> {
    if (request.args.length === 0) throw new VmctlError("INVALID_ARGUMENT", "exec needs a command", { details: { ...this.#details, field: "args" } });
    const containerId = this.#containerWhen(await this.state(), "running", `exec in ${this.id}`);
    return startExecSession(this.#engine, containerId, request, this.#details);
  }

  /**
   * A tar stream of `path` in the container (copy-out.ts): whenever it exists — running,
   * paused, exited — until destroy; FAILED_PRECONDITION after it, as prepare() and start().
   * stop() and destroy() cut open copies: Docker holds the container while one is read.
   */
  async *copyOut(path: string): AsyncGenerator<Uint8Array> {
    this.#assertNotDestroyed();
    const containerId = this.#containerId;
    if (containerId === undefined) throw new VmctlError("FAILED_PRECONDITION", `cannot copy out of ${this.id}: it has no container yet`, { details: this.#details });
    yield* this.#copies.read({ engine: this.#engine, containerId, containerName: this.#name, serviceId: this.id, path, details: this.#details });
  }

  async pause(): Promise<void> {
    const state = await this.state();
    if (state.phase === "paused") return;
    await this.#engine.pause(this.#containerWhen(state, "running", `pause ${this.id}`));
  }

  async resume(): Promise<void> {
    const state = await this.state();
    if (state.phase === "running") return;
    await this.#engine.unpause(this.#containerWhen(state, "paused", `resume ${this.id}`));
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
    const request = { serviceId: this.id, spec: this.#spec, ctx: this.#ctx, engine: this.#engine, name: this.#name, image, details: this.#details };
    this.#containerId = await createContainer(request);
  }

  async #destroy(): Promise<void> {
    this.#copies.close(this.id, "the service is being destroyed", this.#details);
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

  /** The container's id when the service is in `phase`; else FAILED_PRECONDITION saying what it is. */
  #containerWhen(state: ServiceState, phase: Phase, action: string): string {
    if (state.phase !== phase || this.#containerId === undefined) {
      throw new VmctlError("FAILED_PRECONDITION", `cannot ${action}: it is ${state.phase}`, { details: this.#details });
    }
    return this.#containerId;
  }
}
