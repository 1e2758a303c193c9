// A first-come, first-served shared/exclusive lock for the image store: pulls share it
// (many at once), removal and garbage collection take it alone, so no file is deleted
// while an engine call that may be about to rely on it is in flight. Waiters are served
// in arrival order, so a queued removal is not starved by a stream of pulls.
interface Waiter {
  readonly exclusive: boolean;
  readonly wake: () => void;
}

export class SharedExclusiveLock {
  #shared = 0;
  #exclusive = false;
  readonly #queue: Waiter[] = [];

  async shared<T>(fn: () => Promise<T>): Promise<T> {
    await this.#acquire(false);
    try {
      return await fn();
    } finally {
      this.#shared -= 1;
      this.#drain();
    }
  }

  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    await this.#acquire(true);
    try {
      return await fn();
    } finally {
      this.#exclusive = false;
      this.#drain();
    }
  }

  #acquire(exclusive: boolean): Promise<void> {
    if (this.#queue.length === 0 && this.#free(exclusive)) {
      this.#take(exclusive);
      return Promise.resolve();
    }
    return new Promise((wake) => this.#queue.push({ exclusive, wake }));
  }

  #free(exclusive: boolean): boolean {
    return !this.#exclusive && (!exclusive || this.#shared === 0);
  }

  #take(exclusive: boolean): void {
    if (exclusive) this.#exclusive = true;
    else this.#shared += 1;
  }

  #drain(): void {
    for (let next = this.#queue[0]; next !== undefined && this.#free(next.exclusive); next = this.#queue[0]) {
      this.#queue.shift();
      this.#take(next.exclusive);
      next.wake();
    }
  }
}
