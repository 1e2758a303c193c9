// Destroying a service so that nothing of it is left: what its target made (checked
// against the resource ledger, not taken on trust), its directory, its image pins, its
// row. A crash part-way is finished by the next start-up's recovery: a delete is marked
// "deleting" first, and a create never acknowledged is still "creating".
import { rm } from "node:fs/promises";
import { join } from "node:path";
import type { Logger, ServiceController, ServiceFactory, TargetContext } from "../contract/target.js";
import { VmctlError } from "../errors.js";
import type { ImageStore } from "../images/image-store.js";
import type { PluginRegistry } from "../plugins/plugin-registry.js";
import type { ExitMonitor } from "./exit-monitor.js";
import type { ServiceNetworks } from "./service-networks.js";
import { controllerRecord } from "./reconciler.js";
import type { ServiceTable } from "./service-table.js";
import { servicesDir } from "./target-context.js";

export interface TeardownDeps {
  readonly services: ServiceTable;
  readonly registry: PluginRegistry;
  readonly images: ImageStore;
  readonly exits: ExitMonitor;
  readonly networks: ServiceNetworks;
  readonly stateDir: string;
  readonly log: Logger;
}

export class ServiceTeardown {
  readonly #deps: TeardownDeps;

  constructor(deps: TeardownDeps) {
    this.#deps = deps;
  }

  /** Marks the service as being deleted (so a crash finishes the job), destroys it, forgets it. Call under its lock. */
  async destroyAndForget(id: string): Promise<void> {
    const { services, registry, images, exits, networks, stateDir } = this.#deps;
    const { store } = services;
    const service = store.get(id);
    if (service === undefined) return;
    const live = services.live.get(id);
    if (live === undefined && store.resources(id).length > 0) {
      throw new VmctlError(
        "FAILED_PRECONDITION",
        `service ${service.name} still owns resources and its target ${service.target} is unavailable ` +
          `(${registry.status(service.target)}); it can be deleted once the target is back`,
        { details: { serviceId: id, target: service.target } },
      );
    }
    store.update(id, { lifecycle: "deleting" });
    await live?.controller.destroy();
    const left = store.resources(id);
    if (left.length > 0) {
      const list = left.map((r) => `${r.kind} ${r.key}`).join(", ");
      services.write(id, { status: `destroy left resources: ${list}` });
      throw new VmctlError("INTERNAL", `target ${service.target} did not free ${list} of service ${service.name}`, {
        details: { serviceId: id, target: service.target },
      });
    }
    // Its host rules and device, then its address: after the target let go of the device.
    await networks.detach(id);
    await rm(join(servicesDir(stateDir), id), { recursive: true, force: true });
    // Its images are no longer pinned by it (image_uses rows also go with the service row,
    // which covers the other ways a service is forgotten: a failed create, recovery).
    images.release(id);
    store.remove(id);
    services.live.delete(id);
    exits.forget(id);
    services.publish("deleted", service);
  }

  /**
   * Undoes a create that failed before it was acknowledged. Never throws: what it cannot
   * undo stays "creating", for the next start-up's recovery to destroy.
   */
  async discardCreate(id: string, factory: ServiceFactory, context: TargetContext, controller?: ServiceController): Promise<void> {
    const { services, log } = this.#deps;
    const { store } = services;
    services.live.delete(id);
    try {
      let c = controller;
      if (c === undefined && store.resources(id).length > 0) {
        // The row itself: `require` hides services still being created, which this one is.
        const service = store.get(id);
        if (service !== undefined) c = await factory.adopt(controllerRecord(store, service), context);
      }
      await c?.destroy();
      await this.#deps.networks.detach(id);
      await rm(context.serviceDir, { recursive: true, force: true });
      store.remove(id);
    } catch (err) {
      log.error("could not undo a failed create; the next start-up will", { service: id, err });
    }
  }
}
