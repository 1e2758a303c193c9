// An in-memory ResourceLedger for tests: the same contract as the engine's durable one,
// minus the disk. `intend` of an existing (kind, key) replaces its data.
import type { OwnedResource, ResourceLedger } from "@vmctl/core/contract";

export class MemoryLedger implements ResourceLedger {
  readonly #entries = new Map<string, OwnedResource>();

  constructor(initial: readonly OwnedResource[] = []) {
    for (const r of initial) this.intend(r);
  }

  intend(resource: OwnedResource): void {
    this.#entries.set(keyOf(resource.kind, resource.key), resource);
  }

  release(kind: string, key: string): void {
    this.#entries.delete(keyOf(kind, key));
  }

  list(): readonly OwnedResource[] {
    return [...this.#entries.values()];
  }
}

function keyOf(kind: string, key: string): string {
  return `${kind}\0${key}`;
}
