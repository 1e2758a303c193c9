// Fan-out of service events to live watchers. Publishing is synchronous and follows the
// committed write, so a watcher that subscribes and then reads a snapshot in the same
// tick misses nothing and sees nothing twice.
import type { ServiceEvent } from "./api.js";

interface Subscriber {
  readonly event: (event: ServiceEvent) => void;
  readonly end: () => void;
}

export class EventHub {
  readonly #subscribers = new Set<Subscriber>();

  /** Returns the unsubscribe function. `end` is called if the hub closes first. */
  subscribe(event: (event: ServiceEvent) => void, end: () => void = () => {}): () => void {
    const subscriber = { event, end };
    this.#subscribers.add(subscriber);
    return () => this.#subscribers.delete(subscriber);
  }

  publish(event: ServiceEvent): void {
    for (const subscriber of this.#subscribers) subscriber.event(event);
  }

  close(): void {
    for (const subscriber of this.#subscribers) subscriber.end();
    this.#subscribers.clear();
  }
}
