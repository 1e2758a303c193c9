// Reading an exec's output a bit at a time in tests: wait for some text, act (write,
// resize, signal), read on. What has been read so far is kept per stream.
import type { ExecOutput, ExecProcess } from "@vmctl/core/contract";

export class OutputReader {
  readonly text = { stdout: "", stderr: "" };
  readonly #chunks: AsyncIterator<ExecOutput>;
  #ended = false;

  constructor(process: ExecProcess) {
    this.#chunks = process[Symbol.asyncIterator]();
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** Reads until `stream` has shown `text` (since the start); throws if the output ends first. */
  async until(stream: ExecOutput["stream"], text: string): Promise<void> {
    while (!this.text[stream].includes(text)) {
      if (!(await this.next())) throw new Error(`the output ended before ${stream} showed ${JSON.stringify(text)}: ${JSON.stringify(this.text)}`);
    }
  }

  /** Reads to the end. */
  async rest(): Promise<{ stdout: string; stderr: string }> {
    while (await this.next());
    return this.text;
  }

  /** One chunk; false at the end. */
  async next(): Promise<boolean> {
    const r = await this.#chunks.next();
    if (r.done) {
      this.#ended = true;
      return false;
    }
    this.text[r.value.stream] += Buffer.from(r.value.data).toString();
    return true;
  }
}
