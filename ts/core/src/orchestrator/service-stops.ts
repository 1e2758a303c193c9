// Stopping services: politely, forced at a deadline. The deadline is stored, so a stop cut
// short by a restart is finished at its original deadline. A stop in progress is shared:
// a later stop joins it, and one with an earlier deadline hurries it rather than queueing
// behind its grace period.
import type { Logger, ServiceController } from "../contract/target.js";
import { VmctlError } from "../errors.js";
import type { StoredService } from "../state/service-row.js";
import type { ServiceTable } from "./service-table.js";

interface StopInFlight {
  deadline: number;
  readonly done: Promise<StoredService>;
}

export class ServiceStops {
  readonly #inFlight = new Map<string, StopInFlight>();
  readonly #services: ServiceTable;
  readonly #log: Logger;

  constructor(services: ServiceTable, log: Logger) {
    this.#services = services;
    this.#log = log;
  }

  /** Begins (or joins, or hurries) the stop of `id`; the promise settles when it has stopped. Call under the service's lock. */
  begin(id: string, timeoutMs: number): Promise<StoredService> {
    const service = this.#services.require(id);
    if (service.phase === "exited" || service.phase === "created") return Promise.resolve(service);
    const deadline = Date.now() + timeoutMs;
    const live = this.#services.requireLive(service);
    const inFlight = this.#inFlight.get(id);
    if (inFlight !== undefined) {
      if (deadline < inFlight.deadline) {
        inFlight.deadline = deadline;
        this.#services.write(id, { stopDeadline: deadline });
        // Controllers' stop is idempotent: a second call with less grace forces sooner.
        live.controller.stop({ timeoutMs }).catch((err: unknown) => this.#log.warn("hurrying a stop failed", { service: id, err }));
      }
      return inFlight.done;
    }
    this.#services.write(id, { phase: "stopping", stopDeadline: deadline });
    return this.#run(id, service.name, live.controller, deadline);
  }

  /** Finishes the stop of an adopted service that a restart interrupted, forced at its stored deadline. */
  resume(service: StoredService, controller: ServiceController, deadline: number): void {
    this.#services.write(service.id, { phase: "stopping" });
    void this.#run(service.id, service.name, controller, deadline);
  }

  #run(id: string, name: string, controller: ServiceController, deadline: number): Promise<StoredService> {
    const { store } = this.#services;
    const done = (async () => {
      try {
        await controller.stop({ timeoutMs: Math.max(0, deadline - Date.now()) });
      } catch (err) {
        await this.#services.refresh(id, controller).catch(() => undefined);
        if (store.get(id) !== undefined) this.#services.write(id, { stopDeadline: null });
        throw VmctlError.from(err, `stopping service ${name}`);
      } finally {
        this.#inFlight.delete(id);
      }
      const stopped = await this.#services.refresh(id, controller);
      return store.get(id) === undefined ? stopped : this.#services.write(id, { stopDeadline: null });
    })();
    this.#inFlight.set(id, { deadline, done });
    // Nobody may be waiting (a stop resumed after a restart): failures are logged, not lost.
    done.catch((err: unknown) => this.#log.warn("stop failed", { service: id, err }));
    return done;
  }
}
