// The services the engine drives: their rows in the state store, the live controller of
// each, and the event that follows every committed write. The engine and its helpers
// (dependencies, readiness, the exit monitor) read and write services only through
// here, so each change is published exactly once and a create not yet acknowledged is
// invisible to all of them alike.
import type { ServiceController, ServiceFactory, TargetContext } from "../contract/target.js";
import { VmctlError } from "../errors.js";
import type { PluginRegistry } from "../plugins/plugin-registry.js";
import { publicRecord, type StoredService } from "../state/service-row.js";
import type { ServicePatch, StateStore } from "../state/state-store.js";
import type { ServiceEvent } from "./api.js";
import type { EventHub } from "./event-hub.js";
import { checkRef } from "./request-checks.js";
import { patchFromState } from "./service-state.js";

/** What drives a service now: its target's factory, its controller and the context it was given. */
export interface LiveService {
  readonly factory: ServiceFactory;
  readonly controller: ServiceController;
  readonly context: TargetContext;
}

export class ServiceTable {
  /** Services with a controller: created here, or adopted at start-up. The others cannot be driven. */
  readonly live = new Map<string, LiveService>();
  readonly #registry: PluginRegistry;

  constructor(
    readonly store: StateStore,
    readonly hub: EventHub,
    registry: PluginRegistry,
  ) {
    this.#registry = registry;
  }

  /** Commits `patch`; watchers hear of it unless the service is being created or deleted. */
  write(id: string, patch: ServicePatch): StoredService {
    const service = this.store.update(id, patch);
    if (service === undefined) throw new VmctlError("NOT_FOUND", `service ${id} no longer exists`, { details: { serviceId: id } });
    if (service.lifecycle === "active") this.publish("updated", service);
    return service;
  }

  publish(kind: ServiceEvent["kind"], service: StoredService): void {
    this.hub.publish({ kind, service: publicRecord(service), at: new Date() });
  }

  /** Stores the controller's current state and record; an exit already recorded keeps its details. */
  async refresh(id: string, controller: ServiceController): Promise<StoredService> {
    const state = await controller.state();
    const service = this.require(id);
    this.store.saveControllerData(id, controller.record());
    const keepExit = state.phase === "exited" && service.exit !== undefined;
    return this.write(id, { ...patchFromState(state, service.readiness !== undefined), ...(keepExit ? { exit: service.exit } : {}) });
  }

  /** An acknowledged service by id or name. */
  visible(ref: string): StoredService | undefined {
    const service = this.store.find(ref);
    return service === undefined || service.lifecycle === "creating" ? undefined : service;
  }

  /** An acknowledged service by id or name, or NOT_FOUND; a malformed `ref` names `field`. */
  require(ref: string, field = "id"): StoredService {
    const service = this.visible(checkRef(ref, field));
    if (service === undefined) throw new VmctlError("NOT_FOUND", `no service "${ref}"`, { details: { serviceId: ref } });
    return service;
  }

  /** The service's controller, or FAILED_PRECONDITION saying why there is none (its target is unavailable). */
  requireLive(service: StoredService): LiveService {
    const live = this.live.get(service.id);
    if (live === undefined) {
      const why = service.status ?? `target ${service.target}: ${this.#registry.status(service.target)}`;
      throw new VmctlError("FAILED_PRECONDITION", `service ${service.name} cannot be driven: ${why}`, {
        details: { serviceId: service.id, target: service.target },
      });
    }
    return live;
  }
}
