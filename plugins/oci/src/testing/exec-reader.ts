// Reads one exec'd command's output as text, a piece at a time, with one iterator
// (the output is read once): for tests that wait for a line, then act, then read on.
import type { ExecOutput, ExecProcess } from "@vmctl/core/contract";

export const text = (b: Uint8Array): string => Buffer.from(b).toString();

export class ExecReader {
  readonly #it: AsyncIterator<ExecOutput>;
  /** The streams seen so far ("stdout", "stderr"). */
  readonly streams = new Set<string>();
  text = "";

  constructor(p: ExecProcess) {
    this.#it = p[Symbol.asyncIterator]();
  }

  /** Reads until the text so far matches `re`; returns the match. */
  async until(re: RegExp): Promise<RegExpMatchArray> {
    for (;;) {
      const m = this.text.match(re);
      if (m) return m;
      const r = await this.#it.next();
      if (r.done) throw new Error(`output ended before ${re}: ${JSON.stringify(this.text)}`);
      this.#take(r.value);
    }
  }

  /** Reads to the end; returns all the text. */
  async rest(): Promise<string> {
    for (let r = await this.#it.next(); !r.done; r = await this.#it.next()) this.#take(r.value);
    return this.text;
  }

  #take(chunk: ExecOutput): void {
    this.streams.add(chunk.stream);
    this.text += text(chunk.data);
  }
}
