// Whether a service is ready: its readiness check has passed, or (without one) it runs.
// One check runs per service however many dependents wait on it, and a pass is recorded
// (`ready`), so a later dependent does not probe again.
import type { Logger } from "../../contract/target.js";
import { VmctlError } from "../../errors.js";
import type { ServiceTable } from "../service-table.js";
import { probeFor } from "./readiness-probe.js";
import { waitUntilReady } from "./wait-until-ready.js";

export class ServiceReadiness {
  readonly #checks = new Map<string, Promise<void>>();
  readonly #services: ServiceTable;
  readonly #shutdown: AbortSignal;
  readonly #log: Logger;

  /** `shutdown` cancels every check in flight; nothing is recorded after it. */
  constructor(services: ServiceTable, shutdown: AbortSignal, log: Logger) {
    this.#services = services;
    this.#shutdown = shutdown;
    this.#log = log;
  }

  /** Resolves once the service is ready; FAILED_PRECONDITION if it cannot become so, DEADLINE_EXCEEDED if its check timed out. */
  whenReady(id: string): Promise<void> {
    const inFlight = this.#checks.get(id);
    if (inFlight !== undefined) return inFlight;
    const service = this.#services.require(id);
    if (service.ready) return Promise.resolve();
    if (service.readiness === undefined) {
      if (service.phase === "running") {
        this.#services.write(id, { ready: true });
        return Promise.resolve();
      }
      return Promise.reject(
        new VmctlError("FAILED_PRECONDITION", `dependency ${service.name} is ${service.phase}, not running`, {
          details: { serviceId: id },
        }),
      );
    }
    const { check, intervalMs, timeoutMs } = service.readiness;
    // A TCP check without a host probes the service's address on its network, else the
    // first its target reports (without its prefix length).
    const host = service.network?.address ?? service.addresses[0]?.replace(/\/\d+$/, "");
    const promise = waitUntilReady(probeFor(check, host), {
      subject: `service ${service.name}`,
      signal: this.#shutdown,
      ...(intervalMs === undefined ? {} : { intervalMs }),
      ...(timeoutMs === undefined ? {} : { timeoutMs }),
      gate: () => {
        const now = this.#services.store.get(id);
        if (now === undefined || now.lifecycle !== "active") return "was deleted while waiting for it to be ready";
        if (now.phase === "exited") return "exited before it was ready";
        return undefined;
      },
    })
      .then(() => {
        if (!this.#shutdown.aborted) this.#services.write(id, { ready: true });
      })
      .finally(() => this.#checks.delete(id));
    this.#checks.set(id, promise);
    return promise;
  }

  /** Runs the check of a service just started (or adopted) so `ready` is recorded without anyone waiting; a failure is logged. */
  checkInBackground(id: string): void {
    this.whenReady(id).catch((err: unknown) => {
      if (!this.#shutdown.aborted) this.#log.warn("readiness check failed", { service: id, err });
    });
  }
}
