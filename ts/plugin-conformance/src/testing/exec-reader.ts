// Reading one exec'd command's output a piece at a time, for plugin authors' tests: wait
// for some text (in either stream, or in one), act (write, resize, signal), read on.
// The output is read once, through one iterator; what was read is kept, whole and per
// stream, decoded as UTF-8 without splitting a character across chunks.
import { StringDecoder } from "node:string_decoder";
import type { ExecOutput, ExecProcess } from "@vmctl/core/contract";

export type ExecStream = ExecOutput["stream"];

/** Bytes as UTF-8 text. */
export const utf8 = (bytes: Uint8Array): string => Buffer.from(bytes).toString();

export class ExecReader {
  /** Everything read so far, both streams in the order the chunks came. */
  text = "";
  /** What was read so far of each stream. */
  readonly byStream: Record<ExecStream, string> = { stdout: "", stderr: "" };
  /** The streams seen so far. */
  readonly streams = new Set<ExecStream>();
  readonly #chunks: AsyncIterator<ExecOutput>;
  readonly #decoders: Record<ExecStream, StringDecoder> = { stdout: new StringDecoder("utf8"), stderr: new StringDecoder("utf8") };
  #ended = false;

  constructor(process: ExecProcess) {
    this.#chunks = process[Symbol.asyncIterator]();
  }

  /** True once the output has ended. */
  get ended(): boolean {
    return this.#ended;
  }

  /**
   * Reads until the text so far (of `stream`, or of both) contains `pattern` (a substring
   * or a RegExp); returns that text. Throws, with what was read, if the output ends first.
   */
  async until(pattern: string | RegExp, stream?: ExecStream): Promise<string> {
    const seen = () => (stream === undefined ? this.text : this.byStream[stream]);
    const matches = () => (typeof pattern === "string" ? seen().includes(pattern) : pattern.test(seen()));
    while (!matches()) {
      if (!(await this.next())) {
        throw new Error(`the output ended before ${stream ?? "it"} showed ${typeof pattern === "string" ? JSON.stringify(pattern) : pattern}: ${JSON.stringify(this.byStream)}`);
      }
    }
    return seen();
  }

  /** Reads to the end; returns all the text (both streams). */
  async rest(): Promise<string> {
    while (await this.next());
    return this.text;
  }

  /** Reads one chunk; false at the end. */
  async next(): Promise<boolean> {
    if (this.#ended) return false;
    const r = await this.#chunks.next();
    if (r.done) {
      this.#ended = true;
      for (const stream of ["stdout", "stderr"] as const) this.#add(stream, this.#decoders[stream].end());
      return false;
    }
    this.streams.add(r.value.stream);
    this.#add(r.value.stream, this.#decoders[r.value.stream].write(Buffer.from(r.value.data)));
    return true;
  }

  #add(stream: ExecStream, piece: string): void {
    this.byStream[stream] += piece;
    this.text += piece;
  }
}
