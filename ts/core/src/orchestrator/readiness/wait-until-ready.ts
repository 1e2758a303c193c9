// Runs a probe every `intervalMs` until it passes, `timeoutMs` passes, `signal` aborts,
// or `gate` says waiting is pointless (the service exited).
import { setTimeout as sleep } from "node:timers/promises";
import { VmctlError } from "../../errors.js";
import type { ReadinessProbe } from "./readiness-probe.js";

export const DEFAULT_INTERVAL_MS = 200;
export const DEFAULT_TIMEOUT_MS = 60_000;

export interface WaitOptions {
  readonly intervalMs?: number;
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
  /** Checked before each attempt: a string ends the wait with FAILED_PRECONDITION. */
  readonly gate?: () => string | undefined;
  /** Prefix for messages ("service db"). */
  readonly subject?: string;
}

export async function waitUntilReady(probe: ReadinessProbe, options: WaitOptions = {}): Promise<void> {
  const intervalMs = options.intervalMs ?? DEFAULT_INTERVAL_MS;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const subject = options.subject ? `${options.subject}: ` : "";
  const signal = options.signal ?? new AbortController().signal;
  const deadline = Date.now() + timeoutMs;
  let last = "no attempt made";
  for (;;) {
    if (signal.aborted) throw new VmctlError("CANCELLED", `${subject}waiting for ${probe.description} was cancelled`);
    const stop = options.gate?.();
    if (stop !== undefined) throw new VmctlError("FAILED_PRECONDITION", `${subject}${stop}`);
    const remaining = Math.max(1, deadline - Date.now());
    try {
      await probe.probe(AbortSignal.any([signal, AbortSignal.timeout(Math.min(remaining, Math.max(intervalMs * 5, 1000)))]));
      return;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() >= deadline) {
      throw new VmctlError("DEADLINE_EXCEEDED", `${subject}${probe.description} not ready after ${timeoutMs} ms (last: ${last})`);
    }
    try {
      await sleep(Math.min(intervalMs, Math.max(0, deadline - Date.now())), undefined, { signal });
    } catch {
      // aborted: reported at the top of the loop
    }
  }
}
