// L1's serial console as the harness sees it: whole lines, a bounded copy for the
// result, and the tail for error messages.

/** Keeps at most this much console text (the start of a boot matters least). */
const KEEP_CHARS = 4 * 1024 * 1024;

export class ConsoleLog {
  #text = "";
  #partial = "";
  readonly #onLine: (line: string) => void;

  constructor(onLine: (line: string) => void) {
    this.#onLine = onLine;
  }

  /** Feeds raw output; calls onLine for each completed line (without \r\n). */
  push(chunk: string): void {
    const text = (this.#partial + chunk).replace(/\r/g, "");
    const lines = text.split("\n");
    this.#partial = lines.pop() ?? "";
    for (const line of lines) {
      this.#text += line + "\n";
      this.#onLine(line);
    }
    if (this.#text.length > KEEP_CHARS) this.#text = this.#text.slice(-KEEP_CHARS);
  }

  /** Everything kept so far, including an unfinished last line. */
  get text(): string {
    return this.#text + this.#partial;
  }

  tail(lines: number): string {
    return this.text.trimEnd().split("\n").slice(-lines).join("\n");
  }
}
