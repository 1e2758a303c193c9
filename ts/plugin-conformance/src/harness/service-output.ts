// Reading a controller's output in a plugin's own tests: all of it by stream, or waiting
// for a line the workload prints when it is ready.
import { setTimeout as sleep } from "node:timers/promises";
import type { LogChunk, ServiceController } from "@vmctl/core/contract";

/** All output so far as chunks; with `follow`, until the service exits. */
export async function logChunks(c: ServiceController, follow = false): Promise<LogChunk[]> {
  const chunks: LogChunk[] = [];
  for await (const chunk of c.logs({ follow })) chunks.push(chunk);
  return chunks;
}

/** Chunks as text per stream. */
export function streamsOf(chunks: readonly LogChunk[]): { stdout: string; stderr: string } {
  const parts: Record<string, Buffer[]> = { stdout: [], stderr: [] };
  for (const chunk of chunks) parts[chunk.stream]?.push(Buffer.from(chunk.data));
  return { stdout: Buffer.concat(parts.stdout ?? []).toString(), stderr: Buffer.concat(parts.stderr ?? []).toString() };
}

/** All output so far, per stream, as text; with `follow`, until the service exits. */
export async function collectLogs(c: ServiceController, follow = false): Promise<{ stdout: string; stderr: string }> {
  return streamsOf(await logChunks(c, follow));
}

/** Resolves once stdout contains `text` (the workload's "I am ready" handshake); fails if it exits first or after `timeoutMs`. */
export async function untilStdout(c: ServiceController, text: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if ((await collectLogs(c)).stdout.includes(text)) return;
    const state = await c.state();
    if (state.phase === "exited") throw new Error(`exited (${JSON.stringify(state.exit)}) before printing ${text}`);
    if (Date.now() > deadline) throw new Error(`no ${JSON.stringify(text)} on stdout after ${timeoutMs} ms`);
    await sleep(20);
  }
}
