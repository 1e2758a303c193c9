// Pull progress as docker shows it, on stderr. On a terminal, one line per layer, redrawn
// in place (ANSI cursor-up) at most ten times a second:
//   3f4a9c1b2d7e: Downloading [=====>                                            ]  12.3MB/50.1MB
// Elsewhere (CI logs, pipes), one plain line per change of a layer's state, no bars and
// no escape codes. Whole-image steps ("resolve", "mkfs", a target's own) show as one line
// below the layers.
import type { ProgressEvent } from "@vmctl/client";
import { humanSize, shortDigest } from "./format.js";

export interface ProgressClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const SYSTEM_CLOCK: ProgressClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export interface ProgressOptions {
  /** Redraw in place with bars (a terminal), or print state changes as lines. */
  readonly tty: boolean;
  /** The terminal's width: bars only from 110 columns (as docker), lines cut to fit. */
  readonly columns?: number;
  /** Fewest milliseconds between redraws on a terminal; default 100 (10 a second). */
  readonly minIntervalMs?: number;
  readonly clock?: ProgressClock;
}

const BAR_WIDTH = 50;
/** Below this many columns a bar would wrap the line and break the redraw: numbers only. */
const BAR_MIN_COLUMNS = 110;

/** The words for whole-image phases without a message of their own. */
const WHOLE_PHASES: Readonly<Record<string, string>> = {
  resolve: "Resolving",
  mkfs: "Creating the image's disk",
};

interface LayerState {
  readonly id: string;
  status: string;
  current?: number;
  total?: number;
  /** Show `current/total` (with a bar on a wide terminal). */
  counting: boolean;
}

export function progressBar(current: number, total: number): string {
  const filled = Math.min(BAR_WIDTH, Math.floor((BAR_WIDTH * Math.max(0, current)) / total));
  return filled >= BAR_WIDTH ? `[${"=".repeat(BAR_WIDTH)}]` : `[${"=".repeat(filled)}>${" ".repeat(BAR_WIDTH - 1 - filled)}]`;
}

export class PullProgress {
  readonly #out: { write(text: string): unknown };
  readonly #tty: boolean;
  readonly #columns: number | undefined;
  readonly #interval: number;
  readonly #clock: ProgressClock;
  readonly #layers = new Map<string, LayerState>();
  #whole = "";
  /** Lines on screen that the next redraw overwrites (terminal mode). */
  #drawn = 0;
  #lastDraw = Number.NEGATIVE_INFINITY;
  #timer: unknown;
  #dirty = false;
  #downloaded = false;
  #ended = false;

  constructor(out: { write(text: string): unknown }, options: ProgressOptions) {
    this.#out = out;
    this.#tty = options.tty;
    this.#columns = options.columns;
    this.#interval = options.minIntervalMs ?? 100;
    this.#clock = options.clock ?? SYSTEM_CLOCK;
  }

  /** Docker's first line of a pull ("20: Pulling from library/node"). */
  header(text: string): void {
    this.#out.write(`${text}\n`);
  }

  update(event: ProgressEvent): void {
    if (this.#ended) return;
    if (event.item) this.#updateLayer(event.item, event);
    else if (event.phase === "done" || event.phase === "ready") {
      for (const layer of this.#layers.values()) this.#set(layer, layer.status === "Already exists" ? layer.status : "Pull complete", false);
      this.#setWhole("");
    } else this.#setWhole(event.message || WHOLE_PHASES[event.phase] || event.phase);
    if (this.#tty) this.#schedule();
  }

  /** Draws the last state (a pull that failed ends here too); nothing more is shown after. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#tty && this.#dirty) this.#draw();
  }

  /** end(), then docker's closing lines: the digest, and whether anything was downloaded. */
  finish(result: { digest: string; reference: string }): void {
    this.end();
    this.#out.write(`Digest: ${result.digest}\n`);
    this.#out.write(this.#downloaded ? `Status: Downloaded newer image for ${result.reference}\n` : `Status: Image is up to date for ${result.reference}\n`);
  }

  #updateLayer(item: string, event: ProgressEvent): void {
    const id = shortDigest(item) || item;
    let layer = this.#layers.get(id);
    if (layer === undefined) {
      layer = { id, status: "", counting: false };
      this.#layers.set(id, layer);
    }
    const total = event.total !== undefined && event.total > 0 ? event.total : undefined;
    const complete = total !== undefined && (event.current ?? 0) >= total;
    layer.current = event.current;
    layer.total = total;
    switch (event.phase) {
      case "exists":
        return this.#set(layer, "Already exists", false);
      case "download":
        this.#downloaded = true;
        return this.#set(layer, complete ? "Download complete" : "Downloading", !complete);
      case "downloaded":
        this.#downloaded = true;
        return this.#set(layer, "Download complete", false);
      case "copy":
        this.#downloaded = true;
        return this.#set(layer, complete ? "Copy complete" : "Copying", !complete);
      case "verify":
        return this.#set(layer, "Verifying Checksum", false);
      case "unpack":
        return this.#set(layer, complete ? "Pull complete" : "Unpacking", !complete);
      case "done":
        return this.#set(layer, "Pull complete", false);
      default:
        return this.#set(layer, event.message || event.phase, event.current !== undefined && !complete);
    }
  }

  #set(layer: LayerState, status: string, counting: boolean): void {
    const changed = layer.status !== status;
    layer.status = status;
    layer.counting = counting;
    this.#dirty = true;
    if (changed && !this.#tty) this.#out.write(`${layer.id}: ${status}\n`);
  }

  #setWhole(text: string): void {
    if (text === this.#whole) return;
    this.#whole = text;
    this.#dirty = true;
    if (!this.#tty && text !== "") this.#out.write(`${text}\n`);
  }

  #schedule(): void {
    const wait = this.#lastDraw + this.#interval - this.#clock.now();
    if (wait <= 0) {
      this.#draw();
      return;
    }
    this.#timer ??= this.#clock.setTimeout(() => {
      this.#timer = undefined;
      if (!this.#ended) this.#draw();
    }, wait);
  }

  #line(layer: LayerState): string {
    let text = `${layer.id}: ${layer.status}`;
    if (layer.counting && layer.current !== undefined) {
      const numbers = layer.total === undefined ? humanSize(layer.current) : `${humanSize(layer.current).padStart(8)}/${humanSize(layer.total)}`;
      const wide = this.#columns === undefined || this.#columns >= BAR_MIN_COLUMNS;
      text += wide && layer.total !== undefined ? ` ${progressBar(layer.current, layer.total)} ${numbers}` : ` ${numbers}`;
    }
    return this.#fit(text);
  }

  /** A line cut to the terminal's width, so it never wraps (a wrapped line breaks cursor-up). */
  #fit(text: string): string {
    return this.#columns !== undefined && text.length >= this.#columns ? text.slice(0, Math.max(1, this.#columns - 1)) : text;
  }

  #draw(): void {
    this.#lastDraw = this.#clock.now();
    this.#dirty = false;
    const lines = [...this.#layers.values()].map((layer) => this.#line(layer));
    if (this.#whole !== "") lines.push(this.#fit(this.#whole));
    let text = this.#drawn > 0 ? `\x1b[${this.#drawn}A` : "";
    for (const line of lines) text += `\x1b[2K${line}\n`;
    // Fewer lines than last time (the whole-image line went): clear the rest, come back up.
    const extra = this.#drawn - lines.length;
    if (extra > 0) text += `${"\x1b[2K\n".repeat(extra)}\x1b[${extra}A`;
    this.#drawn = lines.length;
    this.#out.write(text);
  }
}

/** A PullProgress on stderr, in the mode stderr calls for. */
export function stderrProgress(): PullProgress {
  const tty = process.stderr.isTTY === true && process.env.TERM !== "dumb";
  return new PullProgress(process.stderr, { tty, ...(tty && process.stderr.columns ? { columns: process.stderr.columns } : {}) });
}
