// `vmctl system prune`: what the targets hold that carries this installation's owner
// label but belongs to none of its services (left by a crash recovery could not finish,
// a state database restored from an older copy, a row removed by hand) is removed. Each
// ready target that can reap (ServiceFactory.owned / removeOwned) lists what carries the
// owner; what names a service the store knows — in any lifecycle, a create in flight or
// a delete under way included — is kept; the rest goes, each reported with the error
// that kept it, if any.
import type { SystemPruneOptions, SystemPruneReport, OwnedThing, PrunedThing, PruneTargetFailure } from "../contract/owned.js";
import type { Logger, ServiceFactory } from "../contract/target.js";
import type { PluginRegistry } from "../plugins/plugin-registry.js";
import type { StateStore } from "../state/state-store.js";

/** A target that can say what it holds. */
export interface ReapingTarget {
  readonly name: string;
  readonly factory: ServiceFactory;
}

export interface PruneScope {
  readonly targets: readonly ReapingTarget[];
  /** The owner label's value things must carry to be considered at all. */
  readonly owner: string;
  /** Whether `serviceId` is a service of the store; asked again right before each removal. */
  readonly knows: (serviceId: string) => boolean;
  readonly log?: Logger;
}

/** The engine's prune: every ready target of `registry`, the store's owner and services. */
export function pruneSystem(registry: PluginRegistry, store: StateStore, log: Logger, options: SystemPruneOptions = {}): Promise<SystemPruneReport> {
  return pruneOwned({ targets: reapingTargets(registry), owner: store.instanceId, knows: (id) => store.get(id) !== undefined, log }, options);
}

/** The ready targets whose factory implements both reaping methods. */
export function reapingTargets(registry: PluginRegistry): ReapingTarget[] {
  return registry.targets().flatMap(({ name }) => {
    const factory = registry.tryFactory(name);
    return factory?.owned !== undefined && factory.removeOwned !== undefined ? [{ name, factory }] : [];
  });
}

/** Asks every target (at once), keeps what a known service owns, removes the rest (one by one per target). */
export async function pruneOwned(scope: PruneScope, options: SystemPruneOptions = {}): Promise<SystemPruneReport> {
  const dryRun = options.dryRun === true;
  const results = await Promise.all(scope.targets.map((target) => pruneTarget(scope, target, dryRun)));
  const things: PrunedThing[] = [];
  const failures: PruneTargetFailure[] = [];
  for (const r of results) {
    things.push(...r.things);
    if (r.failure) failures.push(r.failure);
  }
  scope.log?.info("system prune", { dryRun, removed: things.filter((t) => t.removed).length, failed: things.filter((t) => t.error).length, targetsFailed: failures.length });
  return { dryRun, things, failures };
}

async function pruneTarget(scope: PruneScope, { name, factory }: ReapingTarget, dryRun: boolean): Promise<{ things: PrunedThing[]; failure?: PruneTargetFailure }> {
  let listed: readonly OwnedThing[];
  try {
    listed = await (factory.owned as NonNullable<ServiceFactory["owned"]>).call(factory, scope.owner);
  } catch (err) {
    scope.log?.warn("system prune: a target could not list what it holds", { target: name, err });
    return { things: [], failure: { target: name, error: message(err) } };
  }
  const things: PrunedThing[] = [];
  for (const thing of listed) {
    // A target that lists another owner's things is wrong; they are never touched.
    if (thing.owner !== scope.owner) continue;
    if (thing.serviceId !== undefined && scope.knows(thing.serviceId)) continue;
    const entry = { target: name, kind: thing.kind, id: thing.id, ...(thing.serviceId === undefined ? {} : { serviceId: thing.serviceId }) };
    if (dryRun) {
      things.push({ ...entry, removed: false });
      continue;
    }
    try {
      // Asked again: a service the store learnt of since the listing keeps what is its own.
      if (thing.serviceId !== undefined && scope.knows(thing.serviceId)) continue;
      await (factory.removeOwned as NonNullable<ServiceFactory["removeOwned"]>).call(factory, thing);
      scope.log?.info("system prune removed", { target: name, kind: thing.kind, id: thing.id, service: thing.serviceId });
      things.push({ ...entry, removed: true });
    } catch (err) {
      scope.log?.warn("system prune could not remove", { target: name, kind: thing.kind, id: thing.id, err });
      things.push({ ...entry, removed: false, error: message(err) });
    }
  }
  return { things };
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
