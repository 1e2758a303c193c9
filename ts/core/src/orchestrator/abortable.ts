// Ending a wait without ending the work: a stream or a promise its caller may abandon.
import { VmctlError } from "../errors.js";

// Iterates `source` until it ends or `signal` aborts; on abort the source is asked to
// return (without waiting for it), so a follow stream never pins its caller.
export async function* abortable<T>(source: AsyncIterable<T>, signal?: AbortSignal): AsyncGenerator<T> {
  const iterator = source[Symbol.asyncIterator]();
  if (signal?.aborted) return;
  let onAbort = (): void => {};
  const aborted = new Promise<"aborted">((resolve) => {
    onAbort = () => resolve("aborted");
    signal?.addEventListener("abort", onAbort, { once: true });
  });
  let finished = false;
  try {
    for (;;) {
      const result = await Promise.race([iterator.next(), aborted]);
      if (result === "aborted") return;
      if (result.done) {
        finished = true;
        return;
      }
      yield result.value;
    }
  } finally {
    signal?.removeEventListener("abort", onAbort);
    if (!finished) void iterator.return?.()?.catch(() => undefined);
  }
}

/** `promise`, or CANCELLED as soon as `signal` aborts (the work itself goes on). */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal | undefined, why: () => string): Promise<T> {
  if (signal === undefined) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new VmctlError("CANCELLED", why()));
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
