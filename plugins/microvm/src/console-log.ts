// The console log: the controller appends what the VMM's Console stream says to a file
// in the service dir, so output survives the VMM and orchestrator restarts, and logs()
// reads that file (the target kit's followFiles). On (re)attach the VMM replays its last 64 KiB; `replayOverlap` works
// out how much of that replay the file already holds, so nothing is written twice and a
// gap is noticed.
import { closeSync, fstatSync, openSync, readSync, writeSync } from "node:fs";
import type { Logger } from "@vmctl/core/contract";
import type { VmmClient } from "@vmctl/vmm-client";

/** The VMM keeps the most recent this-many bytes of console output for replay. */
export const VMM_CONSOLE_RING_BYTES = 64 * 1024;
/** How many candidate stream positions are checked when the replay has wrapped. */
const MAX_CANDIDATES = 4096;

export interface ReplayInput {
  /** Bytes the log file already holds (all from this VM, from its first byte on). */
  readonly persisted: number;
  /** The file's last min(persisted, ring) bytes. */
  readonly tail: Uint8Array;
  /** The replay: the first Console message after attaching with replay. */
  readonly replay: Uint8Array;
  /** consoleBytesOut read before attaching, and after the replay arrived. */
  readonly totalBefore: number;
  readonly totalAfter: number;
  readonly ring?: number;
}

export interface ReplayOverlap {
  /** Leading bytes of the replay the file already has. */
  readonly skip: number;
  /** Bytes printed between the end of the file and the start of the replay: lost. */
  readonly gap: number;
}

/**
 * The replay holds stream bytes [T - L, T) where T is the VM's total output when we
 * attached and L its length. While the ring has not wrapped (L < ring) T = L exactly.
 * Once it has, T lies between the two metric readings; each candidate T is checked by
 * comparing the overlap it implies with the file's tail, trying later positions first
 * (so an ambiguous, periodic output errs toward repeating a line rather than losing one).
 */
export function replayOverlap(input: ReplayInput): ReplayOverlap {
  const ring = input.ring ?? VMM_CONSOLE_RING_BYTES;
  const { persisted, tail, replay } = input;
  const length = replay.byteLength;
  if (persisted === 0) return { skip: 0, gap: Math.max(0, input.totalBefore - length) };
  if (length < ring) return { skip: Math.min(persisted, length), gap: 0 };

  const lo = Math.max(length, Math.min(input.totalBefore, input.totalAfter));
  const hi = Math.max(lo, input.totalBefore, input.totalAfter);
  const first = Math.max(lo, hi - MAX_CANDIDATES);
  for (let total = hi; total >= first; total--) {
    const start = total - length;
    if (persisted <= start || persisted >= total) continue;
    const overlap = persisted - start;
    if (overlap > tail.byteLength) continue;
    if (Buffer.compare(tail.subarray(tail.byteLength - overlap), replay.subarray(0, overlap)) === 0) {
      return { skip: overlap, gap: 0 };
    }
  }
  // No overlap lines up. The replay starts after the file ends: the bytes between are lost.
  if (persisted <= hi - length) return { skip: 0, gap: Math.max(0, lo - length - persisted) };
  // The file already reaches past the replay's end: it holds all of it.
  if (persisted >= hi) return { skip: length, gap: 0 };
  // The file was changed behind our back: keep everything, repeating rather than losing.
  return { skip: 0, gap: 0 };
}

/**
 * Follows one VM's console into `file` until the VM exits (the VMM ends the stream),
 * the VMM goes away, or `stop()`. Resolves `done` either way; never rejects.
 */
export class ConsolePump {
  readonly done: Promise<void>;
  #session: { close(): void } | undefined;
  #stopped = false;

  constructor(
    private readonly client: VmmClient,
    private readonly file: string,
    private readonly log: Logger,
  ) {
    this.done = this.#run().catch((err: unknown) => {
      if (!this.#stopped) this.log.debug("console stream ended", { error: String(err) });
    });
  }

  stop(): void {
    this.#stopped = true;
    this.#session?.close();
  }

  async #run(): Promise<void> {
    const fd = openSync(this.file, "a", 0o600);
    try {
      const persisted = fstatSync(fd).size;
      const tail = persisted > 0 ? readTail(this.file, persisted) : new Uint8Array(0);
      const totalBefore = persisted > 0 ? (await this.client.getMetrics()).consoleBytesOut : 0;
      if (this.#stopped) return;
      const session = this.client.console({ replay: true });
      this.#session = session;
      let first = persisted > 0;
      for await (const chunk of session) {
        if (this.#stopped) return;
        let data: Uint8Array = chunk;
        if (first) {
          first = false;
          const totalAfter = (await this.client.getMetrics()).consoleBytesOut;
          const { skip, gap } = replayOverlap({ persisted, tail, replay: chunk, totalBefore, totalAfter });
          if (gap > 0) this.log.warn("console output was lost while no one followed it", { bytes: gap });
          data = chunk.subarray(skip);
        }
        writeAll(fd, data);
      }
    } finally {
      closeSync(fd);
    }
  }
}

function readTail(file: string, size: number): Uint8Array {
  const length = Math.min(size, VMM_CONSOLE_RING_BYTES);
  const buffer = Buffer.alloc(length);
  const fd = openSync(file, "r");
  try {
    let read = 0;
    while (read < length) {
      const n = readSync(fd, buffer, read, length - read, size - length + read);
      if (n === 0) break;
      read += n;
    }
    return buffer.subarray(0, read);
  } finally {
    closeSync(fd);
  }
}

function writeAll(fd: number, data: Uint8Array): void {
  let offset = 0;
  while (offset < data.byteLength) offset += writeSync(fd, data, offset);
}
