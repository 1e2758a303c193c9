// Following started services: each one's controller.wait() runs in the background and the
// exit it reports is recorded. That write is what wait() and watchers hear, so a service
// is followed once, however many times it is started or adopted.
import type { ServiceController } from "../contract/target.js";
import type { ExitInfo } from "../contract/types.js";
import type { ServiceTable } from "./service-table.js";

export class ExitMonitor {
  readonly #followed = new Set<string>();
  readonly #services: ServiceTable;
  readonly #shutdown: AbortSignal;

  /** After `shutdown` aborts nothing more is recorded: the store may be closed. */
  constructor(services: ServiceTable, shutdown: AbortSignal) {
    this.#services = services;
    this.#shutdown = shutdown;
  }

  follow(id: string, controller: ServiceController): void {
    if (this.#followed.has(id)) return;
    this.#followed.add(id);
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

  /** The service was deleted: its wait may still settle, and records nothing. */
  forget(id: string): void {
    this.#followed.delete(id);
  }

  #recordExit(id: string, controller: ServiceController, exit: ExitInfo): void {
    this.#followed.delete(id);
    if (this.#shutdown.aborted) return;
    const { store } = this.#services;
    const service = store.get(id);
    // A delete records nothing more; an exit already recorded (by a stop's refresh) stands.
    if (service === undefined || service.lifecycle === "deleting" || service.phase === "exited") return;
    store.saveControllerData(id, controller.record());
    this.#services.write(id, { phase: "exited", exit, pid: null, ready: false });
  }
}
