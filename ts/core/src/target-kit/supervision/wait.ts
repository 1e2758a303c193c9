import { setTimeout as sleep } from "node:timers/promises";
import { changeIn } from "../dir-change.js";

export interface WaitOptions {
  /** Give up after this long: the result is then undefined. Absent: wait as long as it takes. */
  readonly timeoutMs?: number;
  /** The longest pause between two checks. */
  readonly pollMs: number;
  /** A directory whose changes (a file written, renamed) wake the waiter before `pollMs`. */
  readonly dir?: string;
}

/**
 * The first defined answer of `check`, asked again after each change in `dir` (or each
 * `pollMs`), or undefined once `timeoutMs` has passed. The one wait loop of the kit:
 * exit files, pid files and process ends are all waited for through it.
 */
export async function waitFor<T>(check: () => T | undefined | Promise<T | undefined>, options: WaitOptions): Promise<T | undefined> {
  const deadline = options.timeoutMs === undefined ? Infinity : Date.now() + options.timeoutMs;
  for (;;) {
    const answer = await check();
    if (answer !== undefined) return answer;
    const left = deadline - Date.now();
    if (left <= 0) return undefined;
    const pause = Math.max(1, Math.min(options.pollMs, left));
    if (options.dir === undefined) await sleep(pause);
    else await changeIn(options.dir, pause);
  }
}
