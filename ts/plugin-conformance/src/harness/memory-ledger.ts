// An in-memory ResourceLedger: the contract of the engine's durable one, minus the disk.
// `intend` of an existing (kind, key) replaces its data. It also keeps the history of
// every version ever intended, so a check can ask about resources already released.
import type { OwnedResource, ResourceLedger } from "@vmctl/core/contract";

export class MemoryLedger implements ResourceLedger {
  readonly #entries = new Map<string, OwnedResource>();
  readonly #history: OwnedResource[] = [];

  constructor(initial: readonly OwnedResource[] = []) {
    for (const r of initial) this.intend(r);
  }

  intend(resource: OwnedResource): void {
    if (typeof resource?.kind !== "string" || typeof resource.key !== "string") {
      throw new TypeError(`ledger: a resource needs string kind and key, got ${JSON.stringify(resource)}`);
    }
    // What the durable ledger stores is JSON: a resource that does not survive that is refused there too.
    const stored = JSON.parse(JSON.stringify(resource)) as OwnedResource;
    this.#entries.set(keyOf(stored.kind, stored.key), stored);
    this.#history.push(stored);
  }

  release(kind: string, key: string): void {
    this.#entries.delete(keyOf(kind, key));
  }

  list(): readonly OwnedResource[] {
    return [...this.#entries.values()];
  }

  /** Every resource as it was intended, including later versions and released ones, in order. */
  history(): readonly OwnedResource[] {
    return [...this.#history];
  }
}

function keyOf(kind: string, key: string): string {
  return `${kind}\0${key}`;
}
