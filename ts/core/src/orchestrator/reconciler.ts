// Crash-only start-up: recovery is the only start-up path. For every stored service the
// target adopts what remains; running services are followed again, dead ones get their
// exit recorded, unacknowledged creates and interrupted deletes are destroyed, and
// service directories nobody owns are removed. A target that is unavailable now leaves
// its services in place, marked with a status, for a later start to reconcile.
import { readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Logger, ServiceController, ServiceFactory, TargetContext } from "../contract/target.js";
import type { ControllerRecord, ServiceState } from "../contract/types.js";
import type { PluginRegistry } from "../plugins/plugin-registry.js";
import type { StoredService } from "../state/service-row.js";
import type { StateStore } from "../state/state-store.js";
import type { ServiceNetworks } from "./service-networks.js";
import { lostExit, patchFromState } from "./service-state.js";

export interface ReconcileDeps {
  readonly store: StateStore;
  readonly registry: PluginRegistry;
  readonly servicesDir: string;
  readonly context: (service: StoredService) => TargetContext;
  /** Undoes a forgotten service's network (rules, device, lease). */
  readonly networks?: ServiceNetworks;
  readonly log: Logger;
  /** Services reconciled at once. Default 8. */
  readonly concurrency?: number;
}

export interface AdoptedService {
  readonly service: StoredService;
  readonly factory: ServiceFactory;
  readonly controller: ServiceController;
  readonly context: TargetContext;
}

export interface ReconcileReport {
  /** Services with a live controller again (running or not). */
  readonly adopted: AdoptedService[];
  /** Ids of services found dead whose exit was recorded now. */
  readonly exited: string[];
  /** Ids of unacknowledged creates and interrupted deletes destroyed and forgotten. */
  readonly removed: string[];
  /** Ids left alone because their target is unavailable or adopt failed. */
  readonly unavailable: string[];
  /** Service directories removed because no service owns them. */
  readonly sweptDirs: string[];
  /** Ids of services whose start was asked for but had not reached the target (waiting, or starting): the engine carries it on. */
  readonly interruptedStarts: string[];
}

export function controllerRecord(store: StateStore, service: StoredService): ControllerRecord {
  const data = store.controllerData(service.id);
  const record = { id: service.id, target: service.target, spec: service.spec, resources: store.resources(service.id) };
  return data === undefined ? record : { ...record, data };
}

export async function reconcile(deps: ReconcileDeps): Promise<ReconcileReport> {
  const report: ReconcileReport = { adopted: [], exited: [], removed: [], unavailable: [], sweptDirs: [], interruptedStarts: [] };
  const services = deps.store.list({ all: true });
  await pool(services, deps.concurrency ?? 8, (service) => reconcileOne(deps, service, report));
  await sweep(deps, report);
  return report;
}

async function reconcileOne(deps: ReconcileDeps, service: StoredService, report: ReconcileReport): Promise<void> {
  const { store, registry, log } = deps;
  const factory = registry.tryFactory(service.target);
  if (factory === undefined) {
    const why = `target ${service.target} unavailable: ${registry.status(service.target)}`;
    if (service.lifecycle === "active") store.update(service.id, { status: why });
    log.warn("service left as it is: its target is unavailable", { service: service.id, why });
    report.unavailable.push(service.id);
    return;
  }
  const context = deps.context(service);
  let controller: ServiceController | undefined;
  let state: ServiceState | undefined;
  try {
    controller = await factory.adopt(controllerRecord(store, service), context);
    if (service.lifecycle === "active") state = await controller?.state();
  } catch (err) {
    const why = `adopt failed: ${err instanceof Error ? err.message : String(err)}`;
    if (service.lifecycle === "active") store.update(service.id, { status: why });
    log.error("could not adopt service", { service: service.id, err });
    report.unavailable.push(service.id);
    return;
  }

  if (service.lifecycle !== "active") {
    // Never acknowledged, or being deleted: free whatever was made, then forget it.
    try {
      await controller?.destroy();
      await deps.networks?.detach(service.id);
      await rm(context.serviceDir, { recursive: true, force: true });
      store.remove(service.id);
      report.removed.push(service.id);
      log.info("removed a service whose create or delete was interrupted", { service: service.id, lifecycle: service.lifecycle });
    } catch (err) {
      log.error("could not clean up an interrupted service; the next start will retry", { service: service.id, err });
      report.unavailable.push(service.id);
    }
    return;
  }

  if (controller === undefined || state === undefined) {
    if (service.phase !== "exited") {
      store.update(service.id, {
        phase: "exited",
        exit: lostExit("nothing of the service remained after the orchestrator restarted"),
        pid: null,
        ready: false,
        status: null,
      });
      report.exited.push(service.id);
    } else {
      store.update(service.id, { status: null });
    }
    return;
  }

  const wasExited = service.phase === "exited";
  const patch = patchFromState(state, service.readiness !== undefined);
  const updated = store.update(service.id, {
    ...patch,
    // An exit already recorded stays as recorded.
    ...(wasExited && service.exit !== undefined && state.phase === "exited" ? { exit: service.exit } : {}),
    ...(state.phase === "running" && service.readiness !== undefined ? { ready: false } : {}),
    status: null,
  }) as StoredService;
  store.saveControllerData(service.id, controller.record());
  if (state.phase === "exited" && !wasExited) report.exited.push(service.id);
  if (state.phase === "created" && (service.phase === "waiting" || service.phase === "starting")) report.interruptedStarts.push(service.id);
  report.adopted.push({ service: updated, factory, controller, context });
}

/** Removes service directories that belong to no stored service. */
async function sweep(deps: ReconcileDeps, report: ReconcileReport): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(deps.servicesDir);
  } catch {
    return;
  }
  for (const entry of entries) {
    if (deps.store.get(entry) !== undefined) continue;
    await rm(join(deps.servicesDir, entry), { recursive: true, force: true });
    report.sweptDirs.push(entry);
  }
}

async function pool<T>(items: readonly T[], size: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await work(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(size, items.length) }, worker));
}
