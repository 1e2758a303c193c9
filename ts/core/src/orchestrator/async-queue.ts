// A push/pull queue consumed with `for await`; `end()` finishes the iteration. Bounded:
// a consumer that falls `limit` items behind gets `overflow()` thrown from its iteration
// instead of the producer growing memory without end (a stuck watcher must not take the
// daemon down with it).
export class AsyncQueue<T> implements AsyncIterable<T> {
  readonly #items: T[] = [];
  readonly #limit: number;
  readonly #overflow: () => Error;
  #waiting: { resolve: (result: IteratorResult<T>) => void; reject: (err: Error) => void } | undefined;
  #ended = false;
  #failure: Error | undefined;

  constructor(options: { limit?: number; overflow?: () => Error } = {}) {
    this.#limit = options.limit ?? Number.POSITIVE_INFINITY;
    this.#overflow = options.overflow ?? (() => new Error(`queue overflow: more than ${this.#limit} items waiting`));
  }

  push(item: T): void {
    if (this.#ended) return;
    const waiting = this.#waiting;
    if (waiting !== undefined) {
      this.#waiting = undefined;
      waiting.resolve({ value: item, done: false });
      return;
    }
    if (this.#items.length >= this.#limit) {
      // Drop what is queued: the consumer must start over from a fresh snapshot anyway.
      this.#items.length = 0;
      this.#failure = this.#overflow();
      this.#ended = true;
      return;
    }
    this.#items.push(item);
  }

  end(): void {
    this.#ended = true;
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => {
        if (this.#items.length > 0) return Promise.resolve({ value: this.#items.shift() as T, done: false });
        if (this.#failure !== undefined) return Promise.reject(this.#failure);
        if (this.#ended) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve, reject) => (this.#waiting = { resolve, reject }));
      },
      return: () => {
        this.end();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
