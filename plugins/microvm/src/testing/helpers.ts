// Small helpers for tests that drive real VMs.
import { setTimeout as sleep } from "node:timers/promises";
import type { LogChunk, ServiceController } from "@vmctl/core/contract";

/** All console output so far (or, with follow, until the VM exits), as text. */
export async function consoleText(c: ServiceController, follow = false): Promise<string> {
  const parts: Buffer[] = [];
  for await (const chunk of c.logs({ follow }) as AsyncIterable<LogChunk>) {
    if (chunk.stream !== "console") throw new Error(`unexpected stream ${chunk.stream}`);
    parts.push(Buffer.from(chunk.data));
  }
  return Buffer.concat(parts).toString();
}

/** Resolves once the console matches `pattern` (bounded: fails after 30 s with what it saw). */
export async function untilConsole(c: ServiceController, pattern: RegExp): Promise<string> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const text = await consoleText(c);
    if (pattern.test(text)) return text;
    const state = await c.state();
    if (state.phase === "exited") throw new Error(`exited (${JSON.stringify(state.exit)}) before the console matched ${pattern}: ${text.slice(-300)}`);
    if (Date.now() > deadline) throw new Error(`console never matched ${pattern}: ${text.slice(-300)}`);
    await sleep(20);
  }
}

/** The tick numbers a ticker guest printed, in order. */
export function ticks(text: string): number[] {
  return [...text.matchAll(/^tick=(\d+)$/gm)].map((m) => Number(m[1]));
}
