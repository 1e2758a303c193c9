// Watching services and waiting for one to exit: subscribers of the engine's event hub.
import { LIMITS } from "../contract/limits.js";
import type { ExitInfo } from "../contract/types.js";
import { VmctlError } from "../errors.js";
import { publicRecord, type StoredService } from "../state/service-row.js";
import type { ServiceEvent, ServiceRef } from "./api.js";
import { AsyncQueue } from "./async-queue.js";
import type { EventHub } from "./event-hub.js";
import type { ServiceTable } from "./service-table.js";

/** Events a watcher may fall behind before its watch is ended (OrchestratorOptions.watchQueueLimit). */
export const DEFAULT_WATCH_QUEUE_LIMIT = 10_000;

/**
 * Snapshot events for the services `refs` names (all when empty), then every change,
 * until `signal` aborts or the hub closes. A watcher more than `queueLimit` events
 * behind is ended with RESOURCE_EXHAUSTED rather than buffered without bound.
 */
export async function* watchServices(
  services: ServiceTable,
  refs: readonly ServiceRef[],
  signal: AbortSignal,
  queueLimit: number,
): AsyncGenerator<ServiceEvent> {
  if (refs.length > LIMITS.selectorCount) {
    throw new VmctlError("INVALID_ARGUMENT", `ids: at most ${LIMITS.selectorCount} services per watch`, { details: { field: "ids" } });
  }
  const ids = refs.length > 0 ? new Set(refs.map((ref, i) => services.require(ref, `ids[${i}]`).id)) : undefined;
  const { hub, store } = services;
  if (signal.aborted) return;
  const queue = new AsyncQueue<ServiceEvent>({
    limit: queueLimit,
    overflow: () =>
      new VmctlError("RESOURCE_EXHAUSTED", `watch fell more than ${queueLimit} events behind and was ended; watch again for a fresh snapshot`),
  });
  // Subscribe and snapshot in one tick: nothing is missed between them.
  const unsubscribe = hub.subscribe(
    (event) => {
      if (ids === undefined || ids.has(event.service.id)) queue.push(event);
    },
    () => queue.end(),
  );
  const onAbort = (): void => queue.end();
  signal.addEventListener("abort", onAbort, { once: true });
  const at = new Date();
  const snapshot = ids === undefined ? store.list() : [...ids].map((id) => store.get(id)).filter((s) => s !== undefined);
  try {
    for (const service of snapshot) {
      if (signal.aborted) return;
      yield { kind: "snapshot", service: publicRecord(service), at };
    }
    yield* queue;
  } finally {
    unsubscribe();
    signal.removeEventListener("abort", onAbort);
  }
}

/** The service's exit: at once if recorded, else when the hub reports it; NOT_FOUND if it is deleted first. */
export function waitForExit(hub: EventHub, service: StoredService, signal?: AbortSignal): Promise<ExitInfo> {
  if (service.phase === "exited" && service.exit !== undefined) return Promise.resolve(service.exit);
  return new Promise((resolve, reject) => {
    const finish = (fn: () => void): void => {
      unsubscribe();
      signal?.removeEventListener("abort", onAbort);
      fn();
    };
    const unsubscribe = hub.subscribe(
      (event) => {
        if (event.service.id !== service.id) return;
        if (event.kind === "deleted") {
          finish(() => reject(new VmctlError("NOT_FOUND", `service ${service.name} was deleted before it exited`)));
        } else if (event.service.phase === "exited" && event.service.exit !== undefined) {
          const exit = event.service.exit;
          finish(() => resolve(exit));
        }
      },
      () => finish(() => reject(new VmctlError("UNAVAILABLE", "the orchestrator is shutting down"))),
    );
    const onAbort = (): void => finish(() => reject(new VmctlError("CANCELLED", `wait for ${service.name} was cancelled`)));
    if (signal?.aborted) onAbort();
    else signal?.addEventListener("abort", onAbort, { once: true });
  });
}
