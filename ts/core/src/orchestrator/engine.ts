// The engine: OrchestratorApi over the state store, the target registry and the
// controllers. Every acknowledged change is committed before the call returns; start-up
// is recovery (see reconciler.ts).
import { mkdir, rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { PluginRegistration } from "../contract/plugin.js";
import type { ExecResult, Logger, ServiceController, ServiceFactory, TargetContext } from "../contract/target.js";
import type { ExitInfo, JsonValue, LogChunk, ProgressSink } from "../contract/types.js";
import { VmctlError } from "../errors.js";
import { ImageStore } from "../images/image-store.js";
import type { ImageRecoveryReport } from "../images/store-recovery.js";
import type { NativeImageApi } from "../images/types.js";
import { childLogger, jsonLogger } from "../log/logger.js";
import { loadRegistry } from "../plugins/load-registry.js";
import type { PluginRegistry } from "../plugins/plugin-registry.js";
import { publicRecord, type StoredService } from "../state/service-row.js";
import { DEFAULT_STATE_DIR, StateStore, type IntegrityReport, type ServicePatch } from "../state/state-store.js";
import { abortable, untilAborted } from "./abortable.js";
import type {
  CreateServiceInput,
  OrchestratorApi,
  ServiceEvent,
  ServiceFilter,
  ServiceRecord,
  ServiceRef,
  TargetInfo,
} from "./api.js";
import { LIMITS } from "../contract/limits.js";
import { checkCreateInput, generatedName, newServiceId, requestFingerprint, specError, specFromRun, type CheckedCreateInput } from "./create-input.js";
import { EventHub } from "./event-hub.js";
import { KeyedLock } from "./keyed-lock.js";
import { matchesSelectors, parseSelectors } from "./label-selector.js";
import { probeFor } from "./readiness/readiness-probe.js";
import { checkArgs, checkJsonShape, checkRef, checkStopTimeout } from "./request-checks.js";
import { waitForExit, watchServices } from "./service-watchers.js";
import { waitUntilReady } from "./readiness/wait-until-ready.js";
import { controllerRecord, reconcile, type ReconcileReport } from "./reconciler.js";
import { patchFromState } from "./service-state.js";
import { imagesDir, serviceContext, servicesDir } from "./target-context.js";

export const DEFAULT_STOP_TIMEOUT_MS = 10_000;

export interface OrchestratorOptions {
  /** Where state lives; default /var/lib/vmctl. */
  readonly stateDir?: string;
  /**
   * Plugins to load: a path ("/opt/x", "./x") to a plugin package, a package name
   * ("vmctl-plugin-oci", "@acme/vmctl-plugin-x") looked up in `nodeModules`, or a
   * PluginRegistration already in hand (built-in targets).
   */
  readonly plugins?: readonly (string | PluginRegistration)[];
  /** node_modules folders to find named plugins in. */
  readonly nodeModules?: readonly string[];
  /** Also load every vmctl-plugin-* / @scope/vmctl-plugin-* found in `nodeModules`. */
  readonly discover?: boolean;
  /** Options per target (`targets.<name>` of the config), handed to the target's init. */
  readonly targetOptions?: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  readonly log?: Logger;
  /** Events a watcher may fall behind before its watch is ended with RESOURCE_EXHAUSTED (default 10,000). */
  readonly watchQueueLimit?: number;
  /**
   * The image engine (@vmctl/native) behind `ctx.images` and `orchestrator.images`.
   * Without it, images already held can be listed and removed, but nothing is pulled:
   * `ctx.images.use` of an absent image fails with FAILED_PRECONDITION.
   */
  readonly images?: {
    readonly native: NativeImageApi;
    /** Registries (`host:port`) spoken to over plain HTTP. */
    readonly insecureRegistries?: readonly string[];
  };
}

export interface CreateOptions {
  /** Progress of the target's prepare (image pulls, unpacking...). */
  readonly progress?: ProgressSink;
}

const DEFAULT_WATCH_QUEUE_LIMIT = 10_000;

interface Live {
  readonly factory: ServiceFactory;
  readonly controller: ServiceController;
  readonly context: TargetContext;
}

const ACTIVE_PHASES = new Set(["waiting", "starting", "running", "paused", "stopping"]);

/** A stop in progress: later stops join it, and one with an earlier deadline hurries it. */
interface StopInFlight {
  deadline: number;
  readonly done: Promise<StoredService>;
}

export class Orchestrator implements OrchestratorApi {
  readonly #store: StateStore;
  readonly #registry: PluginRegistry;
  readonly #log: Logger;
  readonly #live = new Map<string, Live>();
  readonly #monitored = new Set<string>();
  readonly #readiness = new Map<string, Promise<void>>();
  readonly #starting = new Map<string, AbortController>();
  readonly #stops = new Map<string, StopInFlight>();
  /** Creates in progress by request id, so a retry racing the original joins it. */
  readonly #creates = new Map<string, { readonly hash: string; readonly done: Promise<ServiceRecord> }>();
  readonly #locks = new KeyedLock();
  readonly #hub = new EventHub();
  readonly #shutdown = new AbortController();
  #closed = false;
  readonly #watchQueueLimit: number;
  /** What start-up recovery found and did. */
  readonly recovery: ReconcileReport;
  /** What start-up recovery of the image store cleaned. */
  readonly imageRecovery: ImageRecoveryReport;
  /** The image store (`<stateDir>/images`): pull, list, inspect, remove, prune. */
  readonly images: ImageStore;

  private constructor(
    readonly stateDir: string,
    store: StateStore,
    registry: PluginRegistry,
    log: Logger,
    recovery: ReconcileReport,
    watchQueueLimit: number,
    images: ImageStore,
    imageRecovery: ImageRecoveryReport,
  ) {
    this.images = images;
    this.imageRecovery = imageRecovery;
    this.#watchQueueLimit = watchQueueLimit;
    this.#store = store;
    this.#registry = registry;
    this.#log = log;
    this.recovery = recovery;
  }

  /** Opens the state, loads and initialises the plugins, recovers every stored service. */
  static async open(options: OrchestratorOptions = {}): Promise<Orchestrator> {
    const stateDir = resolve(options.stateDir ?? DEFAULT_STATE_DIR);
    const log = options.log ?? jsonLogger();
    const store = StateStore.open(stateDir);
    try {
      await mkdir(servicesDir(stateDir), { recursive: true, mode: 0o700 });
      const images = new ImageStore({
        storeDir: imagesDir(stateDir),
        db: store.database,
        ...(options.images === undefined ? {} : { native: options.images.native }),
        ...(options.images?.insecureRegistries === undefined ? {} : { insecureRegistries: options.images.insecureRegistries }),
        log: childLogger(log, { component: "images" }),
      });
      // Before any service is adopted: a target may ask for its image while adopting.
      const imageRecovery = await images.recover();
      const registry = await loadRegistry(options, log);
      await registry.init((target, plugin) => ({
        stateDir: join(stateDir, "targets", target),
        options: options.targetOptions?.[target] ?? {},
        // The plugin's lines are labelled as its own, not as the daemon's.
        log: childLogger(log, { component: "plugin", plugin, target }),
      }));
      for (const t of registry.targets()) {
        if (t.status !== "ready") log.warn("target not usable", { target: t.name, plugin: t.plugin, status: t.status });
      }
      const recovery = await reconcile({
        store,
        registry,
        servicesDir: servicesDir(stateDir),
        context: (s) => serviceContext(store, images, stateDir, s.id, s.target, log),
        log,
      });
      const engine = new Orchestrator(stateDir, store, registry, log, recovery, options.watchQueueLimit ?? DEFAULT_WATCH_QUEUE_LIMIT, images, imageRecovery);
      for (const { service, factory, controller, context } of recovery.adopted) {
        engine.#live.set(service.id, { factory, controller, context });
        engine.#followAdopted(service, controller, recovery.interruptedStarts.includes(service.id));
      }
      log.info("orchestrator ready", {
        stateDir,
        services: store.list().length,
        adopted: recovery.adopted.length,
        exited: recovery.exited.length,
        removed: recovery.removed.length,
      });
      return engine;
    } catch (err) {
      store.close();
      throw err;
    }
  }

  // ---- create ---------------------------------------------------------------------

  /** `options.progress` hears the target's prepare (image pulls...); a retry that joins a create in flight hears nothing. */
  async create(input: CreateServiceInput, options: CreateOptions = {}): Promise<ServiceRecord> {
    this.#assertOpen();
    const request = checkCreateInput(input);
    if (input.spec !== undefined && input.spec !== null) checkJsonShape(input.spec, "spec");
    const progress = options.progress;
    if (request.requestId === undefined) return this.#create(request, input, undefined, progress);

    // Idempotent create: a retry of a request already seen gets its answer, not a twin.
    const requestId = request.requestId;
    const hash = requestFingerprint(input);
    const conflict = (): VmctlError =>
      new VmctlError("ALREADY_EXISTS", `requestId: ${requestId} was used for a different request`, { details: { field: "requestId" } });
    const inFlight = this.#creates.get(requestId);
    if (inFlight !== undefined) {
      if (inFlight.hash !== hash) throw conflict();
      return inFlight.done;
    }
    const existing = this.#store.findByRequestId(requestId);
    if (existing !== undefined) {
      if (existing.requestHash !== hash) throw conflict();
      if (existing.lifecycle !== "active") {
        throw new VmctlError("FAILED_PRECONDITION", `requestId: the service it created (${existing.name}) is being deleted`, {
          details: { field: "requestId", serviceId: existing.id },
        });
      }
      // Acknowledged before, its answer lost; a start asked for then is finished now.
      if (request.start && existing.phase === "created") return this.#startOrDiscard(existing.id);
      return publicRecord(existing);
    }
    const done = this.#create(request, input, hash, progress);
    this.#creates.set(requestId, { hash, done });
    void done.then(
      () => this.#creates.delete(requestId),
      () => this.#creates.delete(requestId),
    );
    return done;
  }

  async #create(request: CheckedCreateInput, input: CreateServiceInput, requestHash?: string, progress?: ProgressSink): Promise<ServiceRecord> {
    const factory = this.#factory(request.target);
    const untrusted = input.run === undefined ? input.spec : specFromRun(factory, input.run, input.spec);
    // The shorthand and the spec were bounded apart; what the target made of them is bounded as a whole.
    if (input.run !== undefined) checkJsonShape(untrusted, "spec");
    let spec: JsonValue;
    try {
      spec = factory.validate(untrusted);
    } catch (err) {
      throw specError(err);
    }
    const dependsOn = request.dependsOn.map((ref, i) => {
      checkRef(ref, `dependsOn[${i}]`);
      const dep = this.#visible(ref);
      if (dep === undefined) {
        throw new VmctlError("NOT_FOUND", `dependsOn[${i}]: no service "${ref}"`, { details: { field: `dependsOn[${i}]` } });
      }
      return dep.id;
    });
    const id = newServiceId();
    const name = request.name ?? generatedName(request.target, id);

    // Durable before anything exists outside the database: the name is reserved in the
    // database (UNIQUE), so concurrent creates of one name cannot both succeed.
    this.#store.reserve({
      id,
      name,
      target: request.target,
      labels: request.labels,
      spec,
      dependsOn: [...new Set(dependsOn)],
      ...(request.readiness === undefined ? {} : { readiness: request.readiness }),
      ...(request.requestId === undefined ? {} : { requestId: request.requestId, requestHash }),
    });
    const context = serviceContext(this.#store, this.images, this.stateDir, id, request.target, this.#log);
    let controller: ServiceController | undefined;
    let created: StoredService;
    try {
      await mkdir(context.serviceDir, { recursive: true, mode: 0o700 });
      controller = await factory.create(id, spec, context);
      await (progress === undefined ? controller.prepare() : controller.prepare(guardedSink(progress)));
      this.#store.saveControllerData(id, controller.record());
      const state = await controller.state();
      this.#live.set(id, { factory, controller, context });
      // The acknowledgement: committed before create returns.
      created = this.#store.update(id, {
        ...patchFromState(state, request.readiness !== undefined),
        lifecycle: "active",
      }) as StoredService;
    } catch (err) {
      this.#live.delete(id);
      await this.#discard(id, factory, context, controller);
      throw VmctlError.from(err, `creating service ${name}`);
    }
    this.#publish("created", created);

    if (!request.start) return publicRecord(created);
    return this.#startOrDiscard(id);
  }

  /** The start of a create+start request: one that fails leaves nothing behind, as if never created. */
  async #startOrDiscard(id: string): Promise<ServiceRecord> {
    try {
      return await this.start(id);
    } catch (err) {
      try {
        await this.#locks.run(id, () => this.#destroyAndForget(id));
      } catch (cleanup) {
        this.#log.error("could not remove a service whose start failed", { service: id, err: cleanup });
      }
      throw err;
    }
  }

  // ---- start ----------------------------------------------------------------------

  async start(ref: ServiceRef): Promise<ServiceRecord> {
    this.#assertOpen();
    const { id } = this.#require(ref);
    return publicRecord(await this.#locks.run(id, () => this.#start(id)));
  }

  async #start(id: string): Promise<StoredService> {
    let service = this.#require(id);
    if (service.phase === "exited") {
      throw new VmctlError("FAILED_PRECONDITION", `service ${service.name} has exited; exited is final (create a new one)`, {
        details: { serviceId: id },
      });
    }
    if (ACTIVE_PHASES.has(service.phase)) return service;
    const live = this.#requireLive(service);

    if (service.dependsOn.length > 0) {
      const abort = new AbortController();
      this.#starting.set(id, abort);
      service = this.#write(id, { phase: "waiting" });
      try {
        for (const depId of service.dependsOn) await this.#dependencyReady(service, depId, abort.signal);
      } catch (err) {
        this.#write(id, { phase: "created" });
        throw err;
      } finally {
        this.#starting.delete(id);
      }
    }

    this.#write(id, { phase: "starting" });
    try {
      await live.controller.start();
    } catch (err) {
      await this.#refresh(id, live.controller);
      throw VmctlError.from(err, `starting service ${service.name}`);
    }
    const started = await this.#refresh(id, live.controller);
    this.#monitor(id, live.controller);
    if (started.readiness !== undefined && started.phase === "running") this.#probeInBackground(id);
    return started;
  }

  /** Starts the dependency if it is not running yet, then waits until it is ready. */
  async #dependencyReady(service: StoredService, depId: string, signal: AbortSignal): Promise<void> {
    const dep = this.#store.get(depId);
    if (dep === undefined || dep.lifecycle !== "active") {
      throw new VmctlError("FAILED_PRECONDITION", `service ${service.name} depends on ${depId}, which no longer exists`, {
        details: { serviceId: service.id },
      });
    }
    if (dep.phase === "exited") {
      throw new VmctlError("FAILED_PRECONDITION", `service ${service.name} depends on ${dep.name}, which has exited`, {
        details: { serviceId: service.id },
      });
    }
    if (dep.phase === "created") await this.start(depId);
    // A dependency whose check never passes in time is a state of the system, not the
    // caller's deadline: FAILED_PRECONDITION (DEADLINE_EXCEEDED means the client's own).
    const ready = this.#ready(depId).catch((err: unknown) => {
      const e = VmctlError.from(err);
      if (e.code !== "DEADLINE_EXCEEDED") throw e;
      throw new VmctlError("FAILED_PRECONDITION", `${e.message}; service ${service.name} depends on it`, {
        cause: e,
        details: { serviceId: service.id },
      });
    });
    await Promise.race([
      ready,
      new Promise<never>((_, reject) => {
        const abort = (): void =>
          reject(new VmctlError("CANCELLED", `start of ${service.name} was cancelled while waiting for ${dep.name}`));
        if (signal.aborted) abort();
        signal.addEventListener("abort", abort, { once: true });
      }),
    ]);
  }

  /** Resolves once the service is ready: its readiness check passed, or (without one) it runs. */
  #ready(id: string): Promise<void> {
    const inFlight = this.#readiness.get(id);
    if (inFlight !== undefined) return inFlight;
    const service = this.#require(id);
    if (service.ready) return Promise.resolve();
    if (service.readiness === undefined) {
      if (service.phase === "running") {
        this.#write(id, { ready: true });
        return Promise.resolve();
      }
      return Promise.reject(
        new VmctlError("FAILED_PRECONDITION", `dependency ${service.name} is ${service.phase}, not running`, {
          details: { serviceId: id },
        }),
      );
    }
    const { check, intervalMs, timeoutMs } = service.readiness;
    const host = service.addresses[0]?.replace(/\/\d+$/, "");
    const promise = waitUntilReady(probeFor(check, host), {
      subject: `service ${service.name}`,
      signal: this.#shutdown.signal,
      ...(intervalMs === undefined ? {} : { intervalMs }),
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
      gate: () => {
        const now = this.#store.get(id);
        if (now === undefined || now.lifecycle !== "active") return "was deleted while waiting for it to be ready";
        if (now.phase === "exited") return "exited before it was ready";
        return undefined;
      },
    })
      .then(() => {
        if (!this.#closed) this.#write(id, { ready: true });
      })
      .finally(() => this.#readiness.delete(id));
    this.#readiness.set(id, promise);
    return promise;
  }

  #probeInBackground(id: string): void {
    this.#ready(id).catch((err: unknown) => {
      if (!this.#closed) this.#log.warn("readiness check failed", { service: id, err });
    });
  }

  // ---- stop / delete --------------------------------------------------------------

  /**
   * Polite stop, forced after `timeoutMs`. The service's lock is held only to begin the
   * stop: the grace period runs outside it, so a later stop with a shorter timeout (or
   * a forced delete) hurries it instead of queueing behind it. `signal` ends this
   * call's wait, not the stop.
   */
  async stop(ref: ServiceRef, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<ServiceRecord> {
    this.#assertOpen();
    const timeoutMs = checkStopTimeout(options.timeoutMs, DEFAULT_STOP_TIMEOUT_MS);
    const { id } = this.#require(ref);
    this.#starting.get(id)?.abort();
    // Boxed: a promise returned as is would be awaited under the lock.
    const { done } = await this.#locks.run(id, async () => ({ done: this.#beginStop(id, timeoutMs) }));
    return publicRecord(await untilAborted(done, options.signal, () => `stop of ${id} is still in progress; this call stopped waiting for it`));
  }

  /** Begins (or joins, or hurries) the stop of `id`; the promise settles when it has stopped. Call under the lock. */
  #beginStop(id: string, timeoutMs: number): Promise<StoredService> {
    const service = this.#require(id);
    if (service.phase === "exited" || service.phase === "created") return Promise.resolve(service);
    const deadline = Date.now() + timeoutMs;
    const live = this.#requireLive(service);
    const inFlight = this.#stops.get(id);
    if (inFlight !== undefined) {
      if (deadline < inFlight.deadline) {
        inFlight.deadline = deadline;
        this.#write(id, { stopDeadline: deadline });
        // Controllers' stop is idempotent: a second call with less grace forces sooner.
        live.controller.stop({ timeoutMs }).catch((err: unknown) => this.#log.warn("hurrying a stop failed", { service: id, err }));
      }
      return inFlight.done;
    }
    this.#write(id, { phase: "stopping", stopDeadline: deadline });
    return this.#runStop(id, service.name, live.controller, deadline);
  }

  #runStop(id: string, name: string, controller: ServiceController, deadline: number): Promise<StoredService> {
    const done = (async () => {
      try {
        await controller.stop({ timeoutMs: Math.max(0, deadline - Date.now()) });
      } catch (err) {
        await this.#refresh(id, controller).catch(() => undefined);
        if (this.#store.get(id) !== undefined) this.#write(id, { stopDeadline: null });
        throw VmctlError.from(err, `stopping service ${name}`);
      } finally {
        this.#stops.delete(id);
      }
      const stopped = await this.#refresh(id, controller);
      return this.#store.get(id) === undefined ? stopped : this.#write(id, { stopDeadline: null });
    })();
    this.#stops.set(id, { deadline, done });
    // Nobody may be waiting (a stop resumed after a restart): failures are logged, not lost.
    done.catch((err: unknown) => this.#log.warn("stop failed", { service: id, err }));
    return done;
  }

  async pause(ref: ServiceRef): Promise<ServiceRecord> {
    this.#assertOpen();
    const { id } = this.#require(ref);
    return publicRecord(
      await this.#locks.run(id, async () => {
        const { service, live } = this.#capable(id, "pause");
        if (service.phase === "paused") return service;
        if (service.phase !== "running") throw this.#notRunning(service, "pause");
        await this.#call(id, live.controller, `pausing service ${service.name}`, () => live.controller.pause?.());
        return this.#refresh(id, live.controller);
      }),
    );
  }

  async resume(ref: ServiceRef): Promise<ServiceRecord> {
    this.#assertOpen();
    const { id } = this.#require(ref);
    return publicRecord(
      await this.#locks.run(id, async () => {
        const { service, live } = this.#capable(id, "pause");
        if (service.phase === "running") return service;
        if (service.phase !== "paused") throw this.#notRunning(service, "resume", "paused");
        await this.#call(id, live.controller, `resuming service ${service.name}`, () => live.controller.resume?.());
        return this.#refresh(id, live.controller);
      }),
    );
  }

  async exec(ref: ServiceRef, args: readonly string[]): Promise<ExecResult> {
    this.#assertOpen();
    const { id } = this.#require(ref);
    checkArgs(args, "args", { nonEmpty: true });
    // Not under the service's lock: an exec may run long, and stop must still get through.
    const { service, live } = this.#capable(id, "exec");
    if (service.phase !== "running") throw this.#notRunning(service, "exec in");
    const exec = live.controller.exec;
    if (exec === undefined) throw new VmctlError("INTERNAL", `target ${service.target} claims exec but its controller has no exec()`, { details: { target: service.target } });
    try {
      return await exec.call(live.controller, args);
    } catch (err) {
      throw VmctlError.from(err, `exec in service ${service.name}`);
    }
  }

  /** The service and its controller, if its target claims `capability`; else FAILED_PRECONDITION naming the target. */
  #capable(id: string, capability: "pause" | "exec"): { service: StoredService; live: Live } {
    const service = this.#require(id);
    const factory = this.#registry.tryFactory(service.target);
    if (factory !== undefined && !factory.capabilities[capability]) {
      throw new VmctlError("FAILED_PRECONDITION", `target ${service.target} does not support ${capability}`, {
        details: { serviceId: id, target: service.target },
      });
    }
    return { service, live: this.#requireLive(service) };
  }

  #notRunning(service: StoredService, action: string, expected = "running"): VmctlError {
    return new VmctlError("FAILED_PRECONDITION", `cannot ${action} service ${service.name}: it is ${service.phase}, not ${expected}`, {
      details: { serviceId: service.id },
    });
  }

  /** Runs a controller call; on failure records what the target now says, then throws the error in context. */
  async #call(id: string, controller: ServiceController, context: string, fn: () => Promise<void> | undefined): Promise<void> {
    try {
      await fn();
    } catch (err) {
      await this.#refresh(id, controller).catch(() => undefined);
      throw VmctlError.from(err, context);
    }
  }

  async delete(ref: ServiceRef, options: { force?: boolean } = {}): Promise<void> {
    this.#assertOpen();
    const { id } = this.#require(ref);
    this.#refuseIfDependedOn(id);
    this.#starting.get(id)?.abort();
    await this.#locks.run(id, async () => {
      const service = this.#require(id);
      // Checked again under the lock: a dependent may have been reserved meanwhile.
      this.#refuseIfDependedOn(id);
      if (ACTIVE_PHASES.has(service.phase)) {
        if (!options.force) {
          throw new VmctlError(
            "FAILED_PRECONDITION",
            `service ${service.name} is ${service.phase}; stop it first or delete with force`,
            { details: { serviceId: id } },
          );
        }
        await this.#beginStop(id, DEFAULT_STOP_TIMEOUT_MS);
      }
      await this.#destroyAndForget(id);
    });
  }

  /**
   * Deleting a dependency would leave its dependents unable to start: refused even with
   * force (force is about stopping a running service, not about others). Services still
   * being created count too (`all`): their dependencies were checked before they were reserved.
   */
  #refuseIfDependedOn(id: string): void {
    const dependents = this.#store.list({ all: true }).filter((s) => s.id !== id && s.dependsOn.includes(id));
    if (dependents.length === 0) return;
    const names = dependents.map((s) => s.name);
    throw new VmctlError(
      "FAILED_PRECONDITION",
      `service ${this.#require(id).name} is a dependency of ${names.join(", ")}; delete ${names.length === 1 ? "it" : "them"} first`,
      { details: { serviceId: id } },
    );
  }

  /** Marks the service as being deleted (so a crash finishes the job), destroys it, forgets it. */
  async #destroyAndForget(id: string): Promise<void> {
    const service = this.#store.get(id);
    if (service === undefined) return;
    const live = this.#live.get(id);
    if (live === undefined && this.#store.resources(id).length > 0) {
      throw new VmctlError(
        "FAILED_PRECONDITION",
        `service ${service.name} still owns resources and its target ${service.target} is unavailable ` +
          `(${this.#registry.status(service.target)}); it can be deleted once the target is back`,
        { details: { serviceId: id, target: service.target } },
      );
    }
    this.#store.update(id, { lifecycle: "deleting" });
    await live?.controller.destroy();
    const left = this.#store.resources(id);
    if (left.length > 0) {
      const list = left.map((r) => `${r.kind} ${r.key}`).join(", ");
      this.#write(id, { status: `destroy left resources: ${list}` });
      throw new VmctlError("INTERNAL", `target ${service.target} did not free ${list} of service ${service.name}`, {
        details: { serviceId: id, target: service.target },
      });
    }
    await rm(join(servicesDir(this.stateDir), id), { recursive: true, force: true });
    // Its images are no longer pinned by it (image_uses rows also go with the service row,
    // which covers the other ways a service is forgotten: a failed create, recovery).
    this.images.release(id);
    this.#store.remove(id);
    this.#live.delete(id);
    this.#monitored.delete(id);
    this.#hub.publish({ kind: "deleted", service: publicRecord(service), at: new Date() });
  }

  /** Undoes a create that failed before it was acknowledged. */
  async #discard(id: string, factory: ServiceFactory, context: TargetContext, controller?: ServiceController): Promise<void> {
    try {
      let c = controller;
      if (c === undefined && this.#store.resources(id).length > 0) {
        const service = this.#require(id);
        c = await factory.adopt(controllerRecord(this.#store, service), context);
      }
      await c?.destroy();
      await rm(context.serviceDir, { recursive: true, force: true });
      this.#store.remove(id);
    } catch (err) {
      // The row stays "creating": recovery at the next start destroys what is left.
      this.#log.error("could not undo a failed create; the next start-up will", { service: id, err });
    }
  }

  // ---- read -----------------------------------------------------------------------

  get(ref: ServiceRef): ServiceRecord {
    this.#assertOpen();
    return publicRecord(this.#require(ref));
  }

  list(filter: ServiceFilter = {}): ServiceRecord[] {
    this.#assertOpen();
    const selectors = parseSelectors(filter.labels ?? []);
    const phases = filter.phases && filter.phases.length > 0 ? new Set<string>(filter.phases) : undefined;
    const target = filter.target || undefined;
    return this.#store
      .list({ where: (row) => (target === undefined || row.target === target) && (phases === undefined || phases.has(row.phase)) })
      .filter((s) => matchesSelectors(s.labels, selectors))
      .map(publicRecord);
  }

  async *watch(refs: readonly ServiceRef[], signal: AbortSignal): AsyncIterable<ServiceEvent> {
    this.#assertOpen();
    if (refs.length > LIMITS.selectorCount) {
      throw new VmctlError("INVALID_ARGUMENT", `ids: at most ${LIMITS.selectorCount} services per watch`, { details: { field: "ids" } });
    }
    const ids = refs.length > 0 ? new Set(refs.map((ref, i) => this.#require(ref, `ids[${i}]`).id)) : undefined;
    yield* watchServices(this.#hub, this.#store, ids, signal, this.#watchQueueLimit);
  }

  async *logs(ref: ServiceRef, options: { follow?: boolean; signal?: AbortSignal } = {}): AsyncIterable<LogChunk> {
    this.#assertOpen();
    const service = this.#require(ref);
    const live = this.#requireLive(service);
    yield* abortable(live.controller.logs({ follow: options.follow === true }), options.signal);
  }

  async wait(ref: ServiceRef, signal?: AbortSignal): Promise<ExitInfo> {
    this.#assertOpen();
    const service = this.#require(ref);
    return waitForExit(this.#hub, service, signal);
  }

  targets(): TargetInfo[] {
    return this.#registry.targets();
  }

  /** `PRAGMA integrity_check` (and foreign keys) of the state database. */
  integrityCheck(): IntegrityReport {
    this.#assertOpen();
    return this.#store.integrityCheck();
  }

  /** This orchestrator's owner id (the "vmctl.io/owner" label on what targets make). */
  get instanceId(): string {
    return this.#store.instanceId;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#shutdown.abort();
    this.#hub.close();
    const errors = await this.#registry.close();
    for (const err of errors) this.#log.warn("target close failed", { err });
    this.#store.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // ---- internals ------------------------------------------------------------------

  /**
   * What a restarted orchestrator owes an adopted service: follow it if it may run, finish
   * a stop that was interrupted (forced at its original deadline), and carry on a start
   * that was asked for but had not reached the target.
   */
  #followAdopted(service: StoredService, controller: ServiceController, interruptedStart: boolean): void {
    const { id } = service;
    if (service.phase === "exited") return;
    if (service.stopDeadline !== undefined && service.phase !== "created") {
      this.#write(id, { phase: "stopping" });
      this.#runStop(id, service.name, controller, service.stopDeadline);
      this.#monitor(id, controller);
      return;
    }
    if (service.phase !== "created") {
      this.#monitor(id, controller);
      if (service.readiness !== undefined && service.phase === "running") this.#probeInBackground(id);
      return;
    }
    if (interruptedStart) {
      this.start(id).catch((err: unknown) => {
        if (!this.#closed) this.#log.warn("resuming an interrupted start failed", { service: id, err });
      });
    }
  }

  /** Follows a started service in the background and records its exit when it ends. */
  #monitor(id: string, controller: ServiceController): void {
    if (this.#monitored.has(id)) return;
    this.#monitored.add(id);
    controller.wait().then(
      (exit) => this.#recordExit(id, controller, exit),
      (err: unknown) =>
        this.#recordExit(id, controller, {
          code: null,
          reason: "failed",
          detail: `waiting for the service failed: ${err instanceof Error ? err.message : String(err)}`,
          at: new Date(),
        }),
    );
  }

  #recordExit(id: string, controller: ServiceController, exit: ExitInfo): void {
    this.#monitored.delete(id);
    if (this.#closed) return;
    const service = this.#store.get(id);
    if (service === undefined || service.lifecycle === "deleting" || service.phase === "exited") return;
    this.#store.saveControllerData(id, controller.record());
    this.#write(id, { phase: "exited", exit, pid: null, ready: false });
  }

  /** Stores the controller's current state and record. */
  async #refresh(id: string, controller: ServiceController): Promise<StoredService> {
    const state = await controller.state();
    const service = this.#require(id);
    this.#store.saveControllerData(id, controller.record());
    const keepExit = state.phase === "exited" && service.exit !== undefined;
    return this.#write(id, { ...patchFromState(state, service.readiness !== undefined), ...(keepExit ? { exit: service.exit } : {}) });
  }

  #write(id: string, patch: ServicePatch): StoredService {
    const service = this.#store.update(id, patch);
    if (service === undefined) throw new VmctlError("NOT_FOUND", `service ${id} no longer exists`, { details: { serviceId: id } });
    if (service.lifecycle === "active") this.#publish("updated", service);
    return service;
  }

  #publish(kind: ServiceEvent["kind"], service: StoredService): void {
    this.#hub.publish({ kind, service: publicRecord(service), at: new Date() });
  }

  /** An acknowledged service by id or name. */
  #visible(ref: string): StoredService | undefined {
    const service = this.#store.find(ref);
    return service === undefined || service.lifecycle === "creating" ? undefined : service;
  }

  /** The factory of a usable target; an unknown target names the "target" field. */
  #factory(target: string): ServiceFactory {
    try {
      return this.#registry.factory(target);
    } catch (err) {
      const e = VmctlError.from(err);
      if (e.code !== "NOT_FOUND") throw e;
      throw new VmctlError("NOT_FOUND", `target: ${e.message}`, { cause: err, details: { ...e.details, field: "target", target } });
    }
  }

  #require(ref: string, field = "id"): StoredService {
    const service = this.#visible(checkRef(ref, field));
    if (service === undefined) throw new VmctlError("NOT_FOUND", `no service "${ref}"`, { details: { serviceId: ref } });
    return service;
  }

  #requireLive(service: StoredService): Live {
    const live = this.#live.get(service.id);
    if (live === undefined) {
      const why = service.status ?? `target ${service.target}: ${this.#registry.status(service.target)}`;
      throw new VmctlError("FAILED_PRECONDITION", `service ${service.name} cannot be driven: ${why}`, {
        details: { serviceId: service.id, target: service.target },
      });
    }
    return live;
  }

  #assertOpen(): void {
    if (this.#closed) throw new VmctlError("UNAVAILABLE", "the orchestrator is closed");
  }
}

/** A progress sink that never throws into the target (a watcher gone mid-create). */
function guardedSink(progress: ProgressSink): ProgressSink {
  return (event) => {
    try {
      progress(event);
    } catch {
      // the pull or build goes on without it
    }
  };
}
