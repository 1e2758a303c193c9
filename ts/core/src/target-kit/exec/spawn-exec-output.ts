// An exec'd command's output streams, merged into one iteration that reads at the
// reader's pace: each stream is paused as soon as it hands over a chunk and resumed
// only once the reader has taken it, so what waits here is at most one chunk per
// stream (plus the stream's own high-water mark); the rest stays in the kernel's pipe
// or terminal buffer, where it blocks the command's writes.
import type { Readable } from "node:stream";
import type { ExecOutput } from "../../contract/target.js";
import { VmctlError } from "../../errors.js";

export interface OutputSource {
  readonly stream: ExecOutput["stream"];
  readonly readable: Readable;
}

export class ExecOutputReader implements AsyncIterable<ExecOutput> {
  /** Settles once every stream has ended (or was destroyed). */
  readonly ended: Promise<void>;
  readonly #sources: readonly OutputSource[];
  readonly #queue: ExecOutput[] = [];
  readonly #open = new Set<Readable>();
  #wake: (() => void) | undefined;
  #iterated = false;
  #destroyed = false;

  /** `observe` sees each chunk as it arrives (for a bounded tail of one stream). */
  constructor(sources: readonly OutputSource[], observe?: (chunk: ExecOutput) => void) {
    this.#sources = sources;
    let allEnded!: () => void;
    this.ended = new Promise((resolve) => (allEnded = resolve));
    for (const { stream, readable } of sources) {
      this.#open.add(readable);
      const end = () => {
        if (!this.#open.delete(readable)) return;
        if (this.#open.size === 0) allEnded();
        this.#notify();
      };
      readable.on("data", (data: Buffer) => {
        const chunk: ExecOutput = { stream, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
        readable.pause();
        observe?.(chunk);
        this.#queue.push(chunk);
        this.#notify();
      });
      readable.once("end", end);
      readable.once("close", end);
      // A terminal's master reads EIO once the last process holding it has ended: that
      // is its end of file. Any other read error ends the stream too; the exit says how
      // the command ended.
      readable.on("error", end);
    }
    if (sources.length === 0) allEnded();
  }

  [Symbol.asyncIterator](): AsyncIterator<ExecOutput> {
    if (this.#iterated) throw new VmctlError("FAILED_PRECONDITION", "an exec'd command's output is read once");
    this.#iterated = true;
    return {
      next: () => this.#next(),
      // The reader stops early: the command sees its output closed (SIGPIPE, or a hangup on a terminal).
      return: async () => {
        this.destroy();
        return { done: true, value: undefined };
      },
    };
  }

  /** Stops reading and closes the streams; an iteration under way ends. Idempotent. */
  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.#queue.length = 0;
    for (const { readable } of this.#sources) readable.destroy();
    this.#notify();
  }

  async #next(): Promise<IteratorResult<ExecOutput>> {
    for (;;) {
      if (this.#destroyed) return { done: true, value: undefined };
      const chunk = this.#queue.shift();
      if (chunk !== undefined) {
        this.#resumeIfTaken(chunk.stream);
        return { done: false, value: chunk };
      }
      if (this.#open.size === 0) return { done: true, value: undefined };
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }

  /** The reader has taken every chunk of `stream`: let it read on. */
  #resumeIfTaken(stream: ExecOutput["stream"]): void {
    if (this.#queue.some((c) => c.stream === stream)) return;
    for (const source of this.#sources) {
      if (source.stream === stream && this.#open.has(source.readable)) source.readable.resume();
    }
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}

/** The last `maxBytes` of what passed through, for reading a runtime's error message without keeping all. */
export class OutputTail {
  #tail: Buffer = Buffer.alloc(0);

  constructor(readonly maxBytes: number) {}

  push(data: Uint8Array): void {
    const recent = data.byteLength > this.maxBytes ? data.subarray(data.byteLength - this.maxBytes) : data;
    const joined = Buffer.concat([this.#tail, recent]);
    this.#tail = joined.byteLength > this.maxBytes ? joined.subarray(joined.byteLength - this.maxBytes) : joined;
  }

  text(): string {
    return this.#tail.toString("utf8");
  }
}
