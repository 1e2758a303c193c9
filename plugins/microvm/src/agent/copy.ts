// Tar streams in and out of the guest (CopyIn, CopyOut), as Node streams with backpressure
// both ways: a chunk is written only when grpc-js has room for it, and read only when the
// caller asks for it.
import { once } from "node:events";
import { Readable } from "node:stream";
import type * as grpc from "@grpc/grpc-js";
import { VmctlError } from "@vmctl/core/contract";
import type { AgentClient } from "@vmctl/proto";
import { fromGrpc } from "@vmctl/vmm-client";
import { bufferOf } from "./convert.js";
import type { CopyInResult } from "./types.js";

/** Largest tar message: well under the agent's 4 MiB message limit (tonic's default). */
const TAR_CHUNK_BYTES = 256 * 1024;

/**
 * Unpacks the tar stream `tar` into `destination` (created if missing) in the guest.
 * Rejects with the agent's refusal (INVALID_ARGUMENT naming an entry that escapes the
 * destination) or, if reading `tar` fails, with that failure (the call is cancelled).
 */
export function copyIn(client: AgentClient, destination: string, tar: AsyncIterable<Uint8Array>): Promise<CopyInResult> {
  return new Promise<CopyInResult>((resolve, reject) => {
    let settled = false;
    const settle = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      fn();
    };
    const call = client.copyIn((err, response) => {
      if (err) settle(() => reject(fromGrpc(err)));
      else settle(() => resolve({ entries: Number(response?.entries ?? 0), bytes: Number(response?.bytes ?? 0) }));
    });
    // Resolves when the call has ended either way: a writer waiting for room stops then.
    const ended = new Promise<void>((done) => call.once("status", () => done()));
    const pump = async (): Promise<void> => {
      call.write({ destination });
      for await (const chunk of tar) {
        for (let offset = 0; offset < chunk.byteLength; offset += TAR_CHUNK_BYTES) {
          if (settled) return; // the agent refused: stop reading (the source is closed by the loop's return)
          if (!call.write({ tar: chunk.subarray(offset, offset + TAR_CHUNK_BYTES) })) await Promise.race([once(call, "drain"), ended]);
        }
      }
      call.end();
    };
    pump().catch((err: unknown) => {
      settle(() => reject(VmctlError.from(err, `copy into ${destination}: reading the tar stream`)));
      call.cancel();
    });
  });
}

/**
 * The tar stream of `path` (a file or a directory) in the guest, read from the agent as
 * the returned stream is read. It fails with the agent's status as a VmctlError
 * (NOT_FOUND, INVALID_ARGUMENT for a relative path); destroying it cancels the call.
 */
export function copyOut(client: AgentClient, path: string): Readable {
  const call: grpc.ClientReadableStream<{ data?: Uint8Array | null }> = client.copyOut({ path });
  // The error is read through the iteration below, whenever it starts.
  call.on("error", () => undefined);
  async function* chunks(): AsyncGenerator<Buffer> {
    try {
      for await (const message of call) {
        if (message.data && message.data.byteLength > 0) yield bufferOf(message.data);
      }
    } catch (err) {
      throw fromGrpc(err);
    } finally {
      call.cancel();
    }
  }
  return Readable.from(chunks(), { objectMode: false });
}
