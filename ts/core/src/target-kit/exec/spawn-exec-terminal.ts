// The terminal of an exec with a tty: a pseudo-terminal from the native addon (Node has
// no API to make one), loaded only when a tty is asked for, so the kit stays Node
// built-ins otherwise. The child gets the slave as its stdio; this side keeps the
// master, made non-blocking by the addon.
//
// Reading: a tty stream over the master while the command runs (paused when the
// reader does not pull). libuv ends that stream as soon as the last slave closes,
// while output can still wait in the kernel's buffers (64 MiB of `head` lost ~10 KiB),
// and closes its descriptor; so the kit keeps a second descriptor of the master and
// reads the rest through it until the kernel says EIO (all read).
// Writing: writeSync on that second descriptor, waiting and retrying while the
// terminal's input is full (EAGAIN), so a command that reads nothing never blocks the
// event loop (libuv would write a master in blocking mode).
import { closeSync, readSync, writeSync } from "node:fs";
import { Readable } from "node:stream";
import { ReadStream } from "node:tty";
import type { TerminalSize } from "../../contract/target.js";
import { VmctlError } from "../../errors.js";

/** What the kit uses of `@vmctl/native`. */
export interface PtyAddon {
  openPty(rows: number, cols: number, raw?: boolean): { master: number; slave: number };
  resizePty(fd: number, rows: number, cols: number): void;
  dupFd(fd: number): number;
}

export const NATIVE_ADDON = "@vmctl/native";
/** The size of a terminal when the request gives none (a VT100's). */
export const DEFAULT_TERMINAL_SIZE: TerminalSize = { rows: 24, cols: 80 };
const MAX_RETRY_MS = 50;
const DRAIN_CHUNK_BYTES = 64 * 1024;

/** Loads the addon's pty functions; FAILED_PRECONDITION when it is not installed. */
export async function loadPtyAddon(specifier: string = NATIVE_ADDON): Promise<PtyAddon> {
  let addon: unknown;
  try {
    addon = await import(specifier);
  } catch (err) {
    throw new VmctlError(
      "FAILED_PRECONDITION",
      `exec with a tty needs the native addon ${specifier}, which cannot be loaded here: ${(err as Error).message}`,
    );
  }
  const pty = addon as Partial<PtyAddon>;
  if (typeof pty.openPty !== "function" || typeof pty.resizePty !== "function" || typeof pty.dupFd !== "function") {
    throw new VmctlError("FAILED_PRECONDITION", `exec with a tty needs openPty, resizePty and dupFd from ${specifier}; this build of it lacks them`);
  }
  return pty as PtyAddon;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class Terminal {
  /** The terminal's output, to its very end. */
  readonly output: Readable;
  /** The slave, for the child's stdio until `releaseSlave`. */
  readonly slave: number;
  readonly #addon: PtyAddon;
  /** The master's second descriptor: ours to close, so never another file's while open. */
  readonly #master: number;
  readonly #live: ReadStream;
  #masterOpen = true;
  #slaveOpen = true;
  #writes: Promise<void> = Promise.resolve();

  /** With `raw`, the terminal only relays bytes (a runtime gives the command a terminal of its own). */
  constructor(addon: PtyAddon, size: TerminalSize, raw: boolean) {
    this.#addon = addon;
    const { master, slave } = addon.openPty(size.rows, size.cols, raw);
    this.slave = slave;
    try {
      this.#master = addon.dupFd(master);
    } catch (err) {
      closeSync(master);
      closeSync(slave);
      throw err;
    }
    this.#live = new ReadStream(master);
    this.output = this.#outputStream();
  }

  /** The child has its copy: the master reads end of file once the child's side closes. */
  releaseSlave(): void {
    if (!this.#slaveOpen) return;
    this.#slaveOpen = false;
    closeSync(this.slave);
  }

  /** Writes all of `data`, after earlier writes; resolves once the terminal took it. */
  write(data: Uint8Array): Promise<void> {
    const write = this.#writes.then(() => this.#writeAll(Buffer.from(data.buffer, data.byteOffset, data.byteLength)));
    this.#writes = write.catch(() => undefined);
    return write;
  }

  resize(size: TerminalSize): void {
    if (this.#masterOpen) this.#addon.resizePty(this.#master, size.rows, size.cols);
  }

  /** Closes both ends; the output ends. Idempotent. */
  close(): void {
    this.releaseSlave();
    this.#live.destroy();
    if (!this.output.destroyed) this.output.destroy();
    if (this.#masterOpen) {
      this.#masterOpen = false;
      closeSync(this.#master);
    }
  }

  /** Live data from the tty stream, then what is left in the kernel, read until EIO. */
  #outputStream(): Readable {
    const live = this.#live;
    let draining = false;
    const output = new Readable({
      read: () => {
        if (draining) this.#drainOne(output);
        else live.resume();
      },
      destroy: (err, callback) => {
        live.destroy();
        callback(err);
      },
    });
    live.pause();
    live.on("data", (data: Buffer) => {
      if (!output.push(data)) live.pause();
    });
    const drain = () => {
      if (draining) return;
      draining = true;
      // A read may be waiting for data that now comes from the drain.
      if (!output.destroyed) this.#drainOne(output);
    };
    live.once("end", drain);
    live.on("error", drain); // EIO: the same end, said differently
    return output;
  }

  #drainOne(output: Readable): void {
    if (output.destroyed) return;
    if (!this.#masterOpen) {
      output.push(null);
      return;
    }
    const buffer = Buffer.allocUnsafe(DRAIN_CHUNK_BYTES);
    try {
      const n = readSync(this.#master, buffer, 0, buffer.byteLength, null);
      output.push(n > 0 ? buffer.subarray(0, n) : null);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // EAGAIN: a process opened the slave again meanwhile; look again shortly.
      if (code === "EAGAIN") setTimeout(() => this.#drainOne(output), MAX_RETRY_MS);
      else output.push(null); // EIO: all of it is read
    }
  }

  async #writeAll(data: Buffer): Promise<void> {
    let offset = 0;
    let waitMs = 1;
    while (offset < data.byteLength) {
      if (!this.#masterOpen) throw new VmctlError("FAILED_PRECONDITION", "the terminal is closed: the command has ended");
      try {
        offset += writeSync(this.#master, data, offset, data.byteLength - offset);
        waitMs = 1;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === "EIO") throw new VmctlError("FAILED_PRECONDITION", "the terminal is closed: the command has ended");
        if (code !== "EAGAIN") throw VmctlError.from(err, "writing to the terminal");
        // Full: the command is not reading. Wait, longer each time, up to a bound.
        await sleep(waitMs);
        waitMs = Math.min(waitMs * 2, MAX_RETRY_MS);
      }
    }
  }
}
