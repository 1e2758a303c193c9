// The whole of an exec'd command's output and its exit, for callers that want a result
// rather than a stream (tests, conformance checks, short probes). Bounded: a command
// that prints more than `maxBytes` is cancelled and the call fails, rather than the
// caller's memory filling up.
import type { ExecProcess, ExecResult } from "../../contract/target.js";
import { VmctlError } from "../../errors.js";

/** The default bound on stdout and stderr together. */
export const EXEC_TO_END_MAX_BYTES = 16 * 1024 * 1024;

export interface ExecToEndOptions {
  /** stdout and stderr together may hold this many bytes; more cancels the command. */
  readonly maxBytes?: number;
}

/** Reads `process` to its end: its whole stdout, stderr and exit. */
export async function execToEnd(process: ExecProcess, options: ExecToEndOptions = {}): Promise<ExecResult> {
  const maxBytes = options.maxBytes ?? EXEC_TO_END_MAX_BYTES;
  const chunks: Record<"stdout" | "stderr", Uint8Array[]> = { stdout: [], stderr: [] };
  let total = 0;
  try {
    for await (const chunk of process) {
      total += chunk.data.byteLength;
      if (total > maxBytes) {
        throw new VmctlError("RESOURCE_EXHAUSTED", `the command printed more than ${maxBytes} bytes; read its output as a stream instead`);
      }
      chunks[chunk.stream].push(chunk.data);
    }
  } catch (err) {
    process.cancel();
    throw err;
  }
  const exit = await process.exited;
  return { ...exit, stdout: Buffer.concat(chunks.stdout), stderr: Buffer.concat(chunks.stderr) };
}
