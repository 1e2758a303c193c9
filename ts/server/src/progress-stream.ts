// A long engine call (a pull, a create) as a stream: its progress events as they come,
// then its result. Progress is a report, not a log: while the client is slow to read, a
// newer event for the same phase and item replaces the one still waiting, so what is
// queued stays as small as the set of layers however fast the engine reports.
import type { ItemProgressEvent, ItemProgressSink } from "./image-store-api.js";

export type ProgressOrResult<T> = { readonly progress: ItemProgressEvent } | { readonly result: T };

/**
 * Runs `work` with a progress sink; yields each progress event, then `{ result }`, or
 * throws what `work` threw. When `signal` aborts (the client went away) the stream ends
 * at once and quietly, but `work` is not cancelled: it goes on in the background (a pull
 * is shared and kept; a create is durable), its outcome dropped.
 */
export async function* progressStream<T>(work: (progress: ItemProgressSink) => Promise<T>, signal: AbortSignal): AsyncGenerator<ProgressOrResult<T>> {
  const pending = new Map<string, ItemProgressEvent>();
  let settled: { ok: true; value: T } | { ok: false; error: unknown } | undefined;
  let wake: (() => void) | undefined;
  const notify = (): void => {
    wake?.();
    wake = undefined;
  };
  const sink: ItemProgressSink = (event) => {
    if (settled !== undefined || signal.aborted) return;
    const key = `${event.phase}\u0000${event.item ?? ""}`;
    // Deleting first moves a replaced event to the end: events keep their order of arrival.
    pending.delete(key);
    pending.set(key, event);
    notify();
  };
  let running: Promise<T>;
  try {
    running = work(sink);
  } catch (err) {
    running = Promise.reject(err);
  }
  // Attached now, so an outcome nobody waits for any more is never an unhandled rejection.
  running.then(
    (value) => {
      settled = { ok: true, value };
      notify();
    },
    (error: unknown) => {
      settled = { ok: false, error };
      notify();
    },
  );
  const onAbort = (): void => notify();
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    for (;;) {
      if (signal.aborted) return;
      if (pending.size > 0) {
        const [key, event] = pending.entries().next().value as [string, ItemProgressEvent];
        pending.delete(key);
        yield { progress: event };
        continue;
      }
      if (settled !== undefined) {
        if (!settled.ok) throw settled.error;
        yield { result: settled.value };
        return;
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
    }
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}
