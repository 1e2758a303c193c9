// Time budgets: every step of a check races a timer, so a hung plugin call becomes a
// failure with a reason instead of a hung kit.

/** A check failed; the message is the reason reported. */
export class CheckFailure extends Error {
  override readonly name = "CheckFailure";
}

/** A check found nothing to exercise because the capability is not claimed. */
export class NotClaimed extends Error {
  override readonly name = "NotClaimed";
}

export function fail(reason: string): never {
  throw new CheckFailure(reason);
}

/** `work` settled within `ms`, or a CheckFailure saying what did not finish. */
export async function within<T>(ms: number, what: string, work: () => Promise<T> | T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new CheckFailure(`${what} did not finish within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([Promise.resolve().then(work), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `probe` until it returns a value (not undefined), or fails after `ms` with `what`. */
export async function until<T>(ms: number, what: string, probe: () => Promise<T | undefined> | T | undefined, everyMs = 25): Promise<T> {
  const deadline = Date.now() + ms;
  // The last probe still gets time to answer: a wait that ran out says so, not that a probe started at the end was slow.
  const lastProbeMs = Math.min(ms, 5_000);
  for (;;) {
    const value = await within(Math.max(lastProbeMs, deadline - Date.now()), `${what} (one probe)`, probe);
    if (value !== undefined) return value;
    if (Date.now() >= deadline) fail(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** The message of anything thrown, with its code when it has one. */
export function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return `${err.name}${typeof code === "string" ? ` ${code}` : ""}: ${err.message}`;
  }
  return String(err);
}
