import { setTimeout as sleep } from "node:timers/promises";

/** Resolves once `check` holds; fails after `ms` (default 20 s) naming what never happened. */
export async function until(what: string, check: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`never happened: ${what}`);
    await sleep(20);
  }
}
