// Idempotent create: a create carrying a request id that is sent again (its answer lost,
// or the daemon restarted) gets the answer of the first, never a twin. The id is stored
// with the service and a fingerprint of the request, so this holds across restarts; a
// retry racing the original joins it.
import { VmctlError } from "../errors.js";
import type { StoredService } from "../state/service-row.js";
import type { StateStore } from "../state/state-store.js";
import type { ServiceRecord } from "./api.js";

export class CreateRequests {
  /** Creates in progress by request id. */
  readonly #inFlight = new Map<string, { readonly hash: string; readonly done: Promise<ServiceRecord> }>();
  readonly #store: StateStore;

  constructor(store: StateStore) {
    this.#store = store;
  }

  /**
   * Joins the create of `requestId` in flight, answers one already acknowledged with
   * `answer`, or runs `create`. The same id with another fingerprint is ALREADY_EXISTS.
   */
  run(
    requestId: string,
    hash: string,
    create: () => Promise<ServiceRecord>,
    answer: (existing: StoredService) => ServiceRecord | Promise<ServiceRecord>,
  ): Promise<ServiceRecord> {
    const conflict = (): VmctlError =>
      new VmctlError("ALREADY_EXISTS", `requestId: ${requestId} was used for a different request`, { details: { field: "requestId" } });
    const inFlight = this.#inFlight.get(requestId);
    if (inFlight !== undefined) {
      if (inFlight.hash !== hash) throw conflict();
      return inFlight.done;
    }
    const existing = this.#store.findByRequestId(requestId);
    if (existing !== undefined) {
      if (existing.requestHash !== hash) throw conflict();
      if (existing.lifecycle !== "active") {
        throw new VmctlError("FAILED_PRECONDITION", `requestId: the service it created (${existing.name}) is being deleted`, {
          details: { field: "requestId", serviceId: existing.id },
        });
      }
      return Promise.resolve(answer(existing));
    }
    const done = create();
    this.#inFlight.set(requestId, { hash, done });
    void done.then(
      () => this.#inFlight.delete(requestId),
      () => this.#inFlight.delete(requestId),
    );
    return done;
  }
}
