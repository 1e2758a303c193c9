// Small helpers for tests that drive real containers.
import { readdirSync, readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import type { LogChunk, ServiceController } from "@vmctl/core/contract";

/** All output so far, per stream, as text. */
export async function collectLogs(c: ServiceController, follow = false): Promise<{ stdout: string; stderr: string }> {
  const parts: Record<string, Buffer[]> = { stdout: [], stderr: [] };
  for await (const chunk of c.logs({ follow }) as AsyncIterable<LogChunk>) parts[chunk.stream]?.push(Buffer.from(chunk.data));
  return { stdout: Buffer.concat(parts.stdout ?? []).toString(), stderr: Buffer.concat(parts.stderr ?? []).toString() };
}

/** Resolves once stdout contains `text` (the workload's "I am ready" handshake). */
export async function untilStdout(c: ServiceController, text: string): Promise<void> {
  for (;;) {
    if ((await collectLogs(c)).stdout.includes(text)) return;
    const state = await c.state();
    if (state.phase === "exited") throw new Error(`exited (${JSON.stringify(state.exit)}) before printing ${text}`);
    await sleep(20);
  }
}

/** Host processes (not zombies) whose command line mentions `needle`. */
export function processesMentioning(needle: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      if (stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) continue;
      if (readFileSync(`/proc/${entry}/cmdline`, "utf8").includes(needle)) pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}
