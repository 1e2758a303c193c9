// The engine: OrchestratorApi over the state store, the target registry and the
// controllers, written as the lifecycle of a service: create, start, stop, delete (and
// pause, resume, exec while it runs). Every acknowledged change is committed before the
// call returns. The mechanisms it drives each have a module beside it: startup.ts (state,
// images, plugins, then recovery by reconciler.ts), service-table.ts (rows, controllers,
// events), create-requests.ts (idempotent create), service-dependencies.ts and readiness/
// (dependency ordering), service-stops.ts, service-teardown.ts, running-service-calls.ts
// (pause, resume, exec), exit-monitor.ts, service-watchers.ts (watch and wait),
// service-networks.ts (networks, address leases and the host rules of a service's network).
import { mkdir } from "node:fs/promises";
import type { ExecProcess, ExecRequest, Logger, ServiceController } from "../contract/target.js";
import type { ExitInfo, LogChunk, ProgressSink } from "../contract/types.js";
import type { SystemPruneOptions, SystemPruneReport } from "../contract/owned.js";
import { VmctlError } from "../errors.js";
import type { ImageStore } from "../images/image-store.js";
import type { ImageRecoveryReport } from "../images/store-recovery.js";
import type { PluginRegistry } from "../plugins/plugin-registry.js";
import { publicRecord, type StoredService } from "../state/service-row.js";
import type { IntegrityReport, StateStore } from "../state/state-store.js";
import { abortable, untilAborted } from "./abortable.js";
import type {
  CreateNetworkInput,
  CreateServiceInput,
  NetworkRecord,
  OrchestratorApi,
  ServiceEvent,
  ServiceFilter,
  ServiceRecord,
  ServiceRef,
  TargetInfo,
} from "./api.js";
import { checkCreateInput, checkServicePath, factoryFor, generatedName, newServiceId, requestFingerprint, validatedSpec, type CheckedCreateInput } from "./create-input.js";
import { CreateRequests } from "./create-requests.js";
import { EventHub } from "./event-hub.js";
import { ExitMonitor } from "./exit-monitor.js";
import { KeyedLock } from "./keyed-lock.js";
import { matchesSelectors, parseSelectors } from "./label-selector.js";
import { ServiceReadiness } from "./readiness/service-readiness.js";
import type { ReconcileReport } from "./reconciler.js";
import { checkArgs, checkJsonShape, checkStopTimeout } from "./request-checks.js";
import { RunningServiceCalls } from "./running-service-calls.js";
import { ServiceDependencies } from "./service-dependencies.js";
import { patchFromState } from "./service-state.js";
import { ServiceStops } from "./service-stops.js";
import { ServiceTable } from "./service-table.js";
import { ServiceTeardown } from "./service-teardown.js";
import { DEFAULT_WATCH_QUEUE_LIMIT, waitForExit, watchServices } from "./service-watchers.js";
import { startUp, type OrchestratorOptions, type StartedState } from "./startup.js";
import { pruneSystem } from "./system-prune.js";
import { serviceContext } from "./target-context.js";
import type { ServiceNetworks, NetworkReconcileReport } from "./service-networks.js";

export type { OrchestratorOptions } from "./startup.js";

export const DEFAULT_STOP_TIMEOUT_MS = 10_000;

export interface CreateOptions {
  /** Progress of the target's prepare (image pulls, unpacking...). */
  readonly progress?: ProgressSink;
}

const ACTIVE_PHASES = new Set(["waiting", "starting", "running", "paused", "stopping"]);

export class Orchestrator implements OrchestratorApi {
  readonly #store: StateStore;
  readonly #registry: PluginRegistry;
  readonly #log: Logger;
  readonly #services: ServiceTable;
  readonly #requests: CreateRequests;
  readonly #dependencies: ServiceDependencies;
  readonly #readiness: ServiceReadiness;
  readonly #exits: ExitMonitor;
  readonly #stops: ServiceStops;
  readonly #calls: RunningServiceCalls;
  readonly #teardown: ServiceTeardown;
  readonly #networks: ServiceNetworks;
  /** start, stop, delete, pause and resume of one service never interleave. */
  readonly #locks = new KeyedLock();
  /** Aborted by close: background work (readiness checks, recording exits) writes no more. */
  readonly #shutdown = new AbortController();
  #closed = false;
  readonly #watchQueueLimit: number;
  readonly stateDir: string;
  /** What start-up recovery found and did. */
  readonly recovery: ReconcileReport;
  /** What start-up recovery of the image store cleaned. */
  readonly imageRecovery: ImageRecoveryReport;
  /** The image store (`<stateDir>/images`): pull, list, inspect, remove, prune. */
  readonly images: ImageStore;
  /** What start-up found of ours on the host (rules, devices, bridges) that nothing accounted for, and removed. */
  readonly networkRecovery: NetworkReconcileReport;

  private constructor(started: StartedState, watchQueueLimit: number) {
    this.stateDir = started.stateDir;
    this.#store = started.store;
    this.#registry = started.registry;
    this.#log = started.log;
    this.recovery = started.recovery;
    this.images = started.images;
    this.imageRecovery = started.imageRecovery;
    this.#networks = started.networks;
    this.networkRecovery = started.networkRecovery;
    this.#watchQueueLimit = watchQueueLimit;
    this.#services = new ServiceTable(this.#store, new EventHub(), this.#registry);
    this.#requests = new CreateRequests(this.#store);
    this.#readiness = new ServiceReadiness(this.#services, this.#shutdown.signal, this.#log);
    this.#dependencies = new ServiceDependencies(this.#services, this.#readiness, (id) => this.start(id));
    this.#exits = new ExitMonitor(this.#services, this.#shutdown.signal);
    this.#stops = new ServiceStops(this.#services, this.#log);
    this.#calls = new RunningServiceCalls(this.#services, this.#registry);
    this.#teardown = new ServiceTeardown({
      services: this.#services,
      registry: this.#registry,
      images: this.images,
      exits: this.#exits,
      networks: this.#networks,
      stateDir: this.stateDir,
      log: this.#log,
    });
  }

  /** Opens the state, loads and initialises the plugins, recovers every stored service, follows those adopted. */
  static async open(options: OrchestratorOptions = {}): Promise<Orchestrator> {
    const started = await startUp(options);
    const { store, log, recovery } = started;
    try {
      const engine = new Orchestrator(started, options.watchQueueLimit ?? DEFAULT_WATCH_QUEUE_LIMIT);
      for (const { service, factory, controller, context } of recovery.adopted) {
        engine.#services.live.set(service.id, { factory, controller, context });
        engine.#followAdopted(service, controller, recovery.interruptedStarts.includes(service.id));
      }
      log.info("orchestrator ready", {
        stateDir: started.stateDir,
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

  /**
   * What a restarted orchestrator owes an adopted service: follow it if it may run, finish
   * a stop that was interrupted (forced at its original deadline), and carry on a start
   * that was asked for but had not reached the target.
   */
  #followAdopted(service: StoredService, controller: ServiceController, interruptedStart: boolean): void {
    const { id } = service;
    if (service.phase === "exited") return;
    if (service.stopDeadline !== undefined && service.phase !== "created") {
      this.#stops.resume(service, controller, service.stopDeadline);
      this.#exits.follow(id, controller);
      return;
    }
    if (service.phase !== "created") {
      this.#exits.follow(id, controller);
      if (service.readiness !== undefined && service.phase === "running") this.#readiness.checkInBackground(id);
      return;
    }
    if (interruptedStart) {
      this.start(id).catch((err: unknown) => {
        if (!this.#closed) this.#log.warn("resuming an interrupted start failed", { service: id, err });
      });
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

    const hash = requestFingerprint(input);
    return this.#requests.run(
      request.requestId,
      hash,
      () => this.#create(request, input, hash, progress),
      // Acknowledged before, its answer lost; a start asked for then is finished now.
      (existing) => (request.start && existing.phase === "created" ? this.#startOrDiscard(existing.id) : publicRecord(existing)),
    );
  }

  async #create(request: CheckedCreateInput, input: CreateServiceInput, requestHash?: string, progress?: ProgressSink): Promise<ServiceRecord> {
    const factory = factoryFor(this.#registry, request.target);
    if (request.network !== undefined && !factory.capabilities.network) {
      throw new VmctlError("FAILED_PRECONDITION", `network: target ${request.target} gives its services no network (it does not claim the network capability)`, {
        details: { field: "network", target: request.target },
      });
    }
    const spec = validatedSpec(factory, input);
    const dependsOn = this.#dependencies.resolve(request.dependsOn);
    if (request.network !== undefined) await this.#networks.precheck(request.network);
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
      dependsOn,
      ...(request.readiness === undefined ? {} : { readiness: request.readiness }),
      ...(request.requestId === undefined ? {} : { requestId: request.requestId, requestHash }),
    });
    let context = serviceContext(this.#store, this.images, this.stateDir, id, request.target, this.#log);
    let controller: ServiceController | undefined;
    let created: StoredService;
    try {
      await mkdir(context.serviceDir, { recursive: true, mode: 0o700 });
      // The address is leased (durably) and the bridge made before the target makes its device.
      if (request.network !== undefined) context = { ...context, network: await this.#networks.attach(id, request.network) };
      controller = await factory.create(id, spec, context);
      await (progress === undefined ? controller.prepare() : controller.prepare(guardedSink(progress)));
      this.#store.saveControllerData(id, controller.record());
      // The host rules need the target's device: it exists once prepared.
      if (request.network !== undefined) await this.#networks.apply(id);
      const state = await controller.state();
      this.#services.live.set(id, { factory, controller, context });
      // The acknowledgement: committed before create returns.
      created = this.#store.update(id, {
        ...patchFromState(state, request.readiness !== undefined),
        lifecycle: "active",
      }) as StoredService;
    } catch (err) {
      await this.#teardown.discardCreate(id, factory, context, controller);
      throw VmctlError.from(err, `creating service ${name}`);
    }
    this.#services.publish("created", created);

    if (!request.start) return publicRecord(created);
    return this.#startOrDiscard(id);
  }

  /** The start of a create+start request: one that fails leaves nothing behind, as if never created. */
  async #startOrDiscard(id: string): Promise<ServiceRecord> {
    try {
      return await this.start(id);
    } catch (err) {
      try {
        await this.#locks.run(id, () => this.#teardown.destroyAndForget(id));
      } catch (cleanup) {
        this.#log.error("could not remove a service whose start failed", { service: id, err: cleanup });
      }
      throw err;
    }
  }

  // ---- start ----------------------------------------------------------------------

  async start(ref: ServiceRef): Promise<ServiceRecord> {
    this.#assertOpen();
    const { id } = this.#services.require(ref);
    return publicRecord(await this.#locks.run(id, () => this.#start(id)));
  }

  async #start(id: string): Promise<StoredService> {
    let service = this.#services.require(id);
    if (service.phase === "exited") {
      throw new VmctlError("FAILED_PRECONDITION", `service ${service.name} has exited; exited is final (create a new one)`, {
        details: { serviceId: id },
      });
    }
    if (ACTIVE_PHASES.has(service.phase)) return service;
    const live = this.#services.requireLive(service);

    if (service.dependsOn.length > 0) {
      service = this.#services.write(id, { phase: "waiting" });
      try {
        await this.#dependencies.waitFor(service);
      } catch (err) {
        this.#services.write(id, { phase: "created" });
        throw err;
      }
    }

    this.#services.write(id, { phase: "starting" });
    try {
      await live.controller.start();
    } catch (err) {
      await this.#services.refresh(id, live.controller);
      throw VmctlError.from(err, `starting service ${service.name}`);
    }
    const started = await this.#services.refresh(id, live.controller);
    this.#exits.follow(id, live.controller);
    if (started.readiness !== undefined && started.phase === "running") this.#readiness.checkInBackground(id);
    return started;
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
    const { id } = this.#services.require(ref);
    this.#dependencies.cancelWait(id);
    // Boxed: a promise returned as is would be awaited under the lock.
    const { done } = await this.#locks.run(id, async () => ({ done: this.#stops.begin(id, timeoutMs) }));
    return publicRecord(await untilAborted(done, options.signal, () => `stop of ${id} is still in progress; this call stopped waiting for it`));
  }

  async pause(ref: ServiceRef): Promise<ServiceRecord> {
    this.#assertOpen();
    const { id } = this.#services.require(ref);
    return publicRecord(await this.#locks.run(id, () => this.#calls.pause(id)));
  }

  async resume(ref: ServiceRef): Promise<ServiceRecord> {
    this.#assertOpen();
    const { id } = this.#services.require(ref);
    return publicRecord(await this.#locks.run(id, () => this.#calls.resume(id)));
  }

  async exec(ref: ServiceRef, request: ExecRequest): Promise<ExecProcess> {
    this.#assertOpen();
    const { id } = this.#services.require(ref);
    const args = checkArgs(request.args, "args", { nonEmpty: true });
    // Not under the service's lock: an exec may run long, and stop must still get through.
    return this.#calls.exec(id, { ...request, args });
  }

  copyOut(ref: ServiceRef, path: string): AsyncIterable<Uint8Array> {
    this.#assertOpen();
    const { id } = this.#services.require(ref);
    return this.#calls.copyOut(id, checkServicePath(path, "path"));
  }

  async delete(ref: ServiceRef, options: { force?: boolean } = {}): Promise<void> {
    this.#assertOpen();
    const { id } = this.#services.require(ref);
    this.#dependencies.refuseDeleteOf(id);
    this.#dependencies.cancelWait(id);
    await this.#locks.run(id, async () => {
      const service = this.#services.require(id);
      // Checked again under the lock: a dependent may have been reserved meanwhile.
      this.#dependencies.refuseDeleteOf(id);
      if (ACTIVE_PHASES.has(service.phase)) {
        if (!options.force) {
          throw new VmctlError(
            "FAILED_PRECONDITION",
            `service ${service.name} is ${service.phase}; stop it first or delete with force`,
            { details: { serviceId: id } },
          );
        }
        await this.#stops.begin(id, DEFAULT_STOP_TIMEOUT_MS);
      }
      await this.#teardown.destroyAndForget(id);
    });
  }

  // ---- read -----------------------------------------------------------------------

  get(ref: ServiceRef): ServiceRecord {
    this.#assertOpen();
    return publicRecord(this.#services.require(ref));
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
    yield* watchServices(this.#services, refs, signal, this.#watchQueueLimit);
  }

  async *logs(ref: ServiceRef, options: { follow?: boolean; signal?: AbortSignal } = {}): AsyncIterable<LogChunk> {
    this.#assertOpen();
    const service = this.#services.require(ref);
    const live = this.#services.requireLive(service);
    yield* abortable(live.controller.logs({ follow: options.follow === true }), options.signal);
  }

  async wait(ref: ServiceRef, signal?: AbortSignal): Promise<ExitInfo> {
    this.#assertOpen();
    return waitForExit(this.#services.hub, this.#services.require(ref), signal);
  }

  targets(): TargetInfo[] {
    return this.#registry.targets();
  }

  // ---- networks ---------------------------------------------------------------------

  async createNetwork(input: CreateNetworkInput): Promise<NetworkRecord> {
    this.#assertOpen();
    return this.#networks.create(input);
  }

  listNetworks(): NetworkRecord[] {
    this.#assertOpen();
    return this.#networks.list();
  }

  getNetwork(name: string): NetworkRecord {
    this.#assertOpen();
    return this.#networks.get(name);
  }

  async deleteNetwork(name: string): Promise<void> {
    this.#assertOpen();
    await this.#networks.delete(name);
  }

  /** `PRAGMA integrity_check` (and foreign keys) of the state database. */
  integrityCheck(): IntegrityReport {
    this.#assertOpen();
    return this.#store.integrityCheck();
  }

  /** `vmctl system prune`: removes what the targets hold under this owner id that belongs to no service (system-prune.ts). */
  async prune(options: SystemPruneOptions = {}): Promise<SystemPruneReport> {
    this.#assertOpen();
    return pruneSystem(this.#registry, this.#store, this.#log, options);
  }

  /** This orchestrator's owner id (the "vmctl.io/owner" label on what targets make). */
  get instanceId(): string {
    return this.#store.instanceId;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#shutdown.abort();
    this.#services.hub.close();
    const errors = await this.#registry.close();
    for (const err of errors) this.#log.warn("target close failed", { err });
    this.#store.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
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
