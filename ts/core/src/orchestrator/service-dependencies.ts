// Dependency ordering (depends_on): a service's dependencies must exist when it is
// created, are started before it and must be ready before it starts, and cannot be
// deleted while it exists. A start waiting on its dependencies is cancelled by a stop or
// delete of the waiting service.
import type { StoredService } from "../state/service-row.js";
import { VmctlError } from "../errors.js";
import type { ServiceReadiness } from "./readiness/service-readiness.js";
import { checkRef } from "./request-checks.js";
import type { ServiceTable } from "./service-table.js";

export class ServiceDependencies {
  /** Starts waiting on their dependencies, by service id: what a stop or delete cancels. */
  readonly #waiting = new Map<string, AbortController>();
  readonly #services: ServiceTable;
  readonly #readiness: ServiceReadiness;
  readonly #start: (id: string) => Promise<unknown>;

  /** `start` starts a dependency not started yet (the engine's own start, under that service's lock). */
  constructor(services: ServiceTable, readiness: ServiceReadiness, start: (id: string) => Promise<unknown>) {
    this.#services = services;
    this.#readiness = readiness;
    this.#start = start;
  }

  /** The ids of a new service's dependencies, each given by id or name; NOT_FOUND names the field. */
  resolve(refs: readonly string[]): string[] {
    const ids = refs.map((ref, i) => {
      checkRef(ref, `dependsOn[${i}]`);
      const dep = this.#services.visible(ref);
      if (dep === undefined) {
        throw new VmctlError("NOT_FOUND", `dependsOn[${i}]: no service "${ref}"`, { details: { field: `dependsOn[${i}]` } });
      }
      return dep.id;
    });
    return [...new Set(ids)];
  }

  /**
   * Deleting a dependency would leave its dependents unable to start: refused even with
   * force (force is about stopping a running service, not about others). Services still
   * being created count too (`all`): their dependencies were checked before they were reserved.
   */
  refuseDeleteOf(id: string): void {
    const dependents = this.#services.store.list({ all: true }).filter((s) => s.id !== id && s.dependsOn.includes(id));
    if (dependents.length === 0) return;
    const names = dependents.map((s) => s.name);
    throw new VmctlError(
      "FAILED_PRECONDITION",
      `service ${this.#services.require(id).name} is a dependency of ${names.join(", ")}; delete ${names.length === 1 ? "it" : "them"} first`,
      { details: { serviceId: id } },
    );
  }

  /** Starts each dependency not started yet and waits until it is ready, in order; CANCELLED by `cancelWait`. */
  async waitFor(service: StoredService): Promise<void> {
    const abort = new AbortController();
    this.#waiting.set(service.id, abort);
    try {
      for (const depId of service.dependsOn) await this.#dependencyReady(service, depId, abort.signal);
    } finally {
      this.#waiting.delete(service.id);
    }
  }

  /** Ends the wait of a start of `id` on its dependencies, if one is in progress. */
  cancelWait(id: string): void {
    this.#waiting.get(id)?.abort();
  }

  async #dependencyReady(service: StoredService, depId: string, signal: AbortSignal): Promise<void> {
    const dep = this.#services.store.get(depId);
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
    if (dep.phase === "created") await this.#start(depId);
    // A dependency whose check never passes in time is a state of the system, not the
    // caller's deadline: FAILED_PRECONDITION (DEADLINE_EXCEEDED means the client's own).
    const ready = this.#readiness.whenReady(depId).catch((err: unknown) => {
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
}
