// Small helpers for tests that drive real containers (the generic ones: @vmctl/plugin-conformance).
import type { LogChunk, ServiceController } from "@vmctl/core/contract";
import { logChunks, streamsOf } from "@vmctl/plugin-conformance";

/** All output so far per stream, and the chunks (their order and times); with `follow`, until exit. */
export async function collectLogs(c: ServiceController, follow = false): Promise<{ stdout: string; stderr: string; chunks: LogChunk[] }> {
  const chunks = await logChunks(c, follow);
  return { ...streamsOf(chunks), chunks };
}

export function sh(script: string): string[] {
  return ["sh", "-c", script];
}
