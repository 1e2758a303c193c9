// Small helpers for tests that drive real containers.
import { setTimeout as sleep } from "node:timers/promises";
import type { LogChunk, ServiceController } from "@vmctl/core/contract";

/** All output so far, per stream, as text; with `follow`, until the service exits. */
export async function collectLogs(c: ServiceController, follow = false): Promise<{ stdout: string; stderr: string; chunks: LogChunk[] }> {
  const parts: Record<string, Buffer[]> = { stdout: [], stderr: [] };
  const chunks: LogChunk[] = [];
  for await (const chunk of c.logs({ follow })) {
    chunks.push(chunk);
    parts[chunk.stream]?.push(Buffer.from(chunk.data));
  }
  return { stdout: Buffer.concat(parts.stdout ?? []).toString(), stderr: Buffer.concat(parts.stderr ?? []).toString(), chunks };
}

/** Resolves once stdout contains `text` (the workload's "I am ready" handshake). */
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

export function sh(script: string): string[] {
  return ["sh", "-c", script];
}
