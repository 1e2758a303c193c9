// One command exec'd in a docker container, as the contract's ExecProcess, over the
// exec's hijacked connection. Output is read off the socket only as the reader asks for
// it: while the reader waits, the socket stays paused, the kernel's buffers fill, Docker
// stops copying and the command blocks on its next write, so nothing here grows with the
// output. Docker's exit code comes from exec inspect once the output has ended.
import { constants } from "node:os";
import type { Duplex } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { VmctlError, type ErrorDetails, type ExecExit, type ExecOutput, type ExecProcess, type ExecRequest, type TerminalSize } from "@vmctl/core/contract";
import { signalProcess, type ProcessRef } from "@vmctl/core/target-kit";
import type { DockerEngine, ExecAttachment, ExecStatus } from "./engine.js";
import { ranExit, startFailureCode } from "./exec-exit.js";
import { FrameDemuxer } from "./exec-frames.js";
import { execHostProcess } from "./exec-host-process.js";

/** Docker records an exec's exit a moment after its output ends. */
const EXIT_RECORD_WAIT_MS = 10_000;
const POLL_MS = 10;
/** Of Docker's reason for a command it could not start, what is kept to classify it (126/127). */
const FAILURE_TEXT_BYTES = 4096;
const MAX_TERMINAL_CELLS = 0xffff;
/** A terminal's end of input: what closeStdin() types on a TTY. */
const TERMINAL_EOF = Uint8Array.of(0x04);

/** Starts `request` in the running container `containerId` (Docker's checks apply: it must run). */
export async function startExecSession(engine: DockerEngine, containerId: string, request: ExecRequest, details: ErrorDetails): Promise<DockerExecSession> {
  const tty = request.tty ?? false;
  if (tty && request.size) checkSize(request.size, details);
  const options = { args: request.args, tty, stdin: request.stdin ?? false, ...(request.size ? { size: request.size } : {}) };
  const attachment = await engine.startExec(containerId, options, details);
  const session = new DockerExecSession(attachment, { tty, stdin: tty || (request.stdin ?? false), details });
  // Daemons before API 1.42 ignore the size given at create: set it before handing over.
  if (tty && request.size) await session.resize(request.size).catch(() => undefined);
  return session;
}

export interface ExecSessionOptions {
  readonly tty: boolean;
  /** Its stdin is attached (asked for, or a TTY). */
  readonly stdin: boolean;
  readonly details: ErrorDetails;
}

export class DockerExecSession implements ExecProcess {
  readonly exited: Promise<ExecExit>;

  readonly #attachment: ExecAttachment;
  readonly #socket: Duplex;
  readonly #tty: boolean;
  readonly #stdin: boolean;
  readonly #details: ErrorDetails;
  /** Signals this session sent, by number (Docker reports death by N as 128+N): the name sent. */
  readonly #signalsSent = new Map<number, string>();
  #read = false;
  #cancelled = false;
  #stdinClosed = false;
  /** Known once output arrives: Docker could not start the command and the output is its reason. */
  #couldNotStart: boolean | undefined;
  #failureText = "";
  /** Resizes apply in the order asked: each waits for the one before. */
  #resizing: Promise<void> = Promise.resolve();
  #hostProcess: Promise<ProcessRef | undefined> | undefined;
  /** Called when the reader has had the whole output, or cancel() made it moot. */
  #outputOver: () => void = () => undefined;

  constructor(attachment: ExecAttachment, options: ExecSessionOptions) {
    this.#attachment = attachment;
    this.#socket = attachment.socket;
    this.#tty = options.tty;
    this.#stdin = options.stdin;
    this.#details = options.details;
    // The reader (or a write's caller) is told of a broken connection; after the HTTP upgrade
    // nothing else listens for its errors, and an unheard one would end vmctld.
    this.#socket.on("error", () => undefined);
    // The socket closes once Docker has sent all and it has been read off (or it is
    // destroyed); the reader may still be handed the last of it: both must be over.
    const closed = new Promise<void>((resolve) => this.#socket.once("close", () => resolve()));
    const outputOver = new Promise<void>((resolve) => (this.#outputOver = resolve));
    this.exited = Promise.all([closed, outputOver]).then(() => this.#exit());
    // Whoever awaits `exited` sees a failure; nobody awaiting it is not a crash.
    this.exited.catch(() => undefined);
  }

  /** The output, once: each socket read is taken only when the reader asks for more. */
  [Symbol.asyncIterator](): AsyncIterator<ExecOutput> {
    if (this.#read) throw new VmctlError("FAILED_PRECONDITION", "an exec's output can be read once", { details: this.#details });
    this.#read = true;
    return this.#output();
  }

  async write(data: Uint8Array): Promise<void> {
    if (!this.#stdin) throw this.#refused("write to the command's stdin: it was started without stdin");
    if (this.#stdinClosed) throw this.#refused("write to the command's stdin: it was closed");
    await this.#send(data);
  }

  async closeStdin(): Promise<void> {
    if (!this.#stdin || this.#stdinClosed || this.#cancelled || this.#socket.destroyed) {
      this.#stdinClosed = true;
      return;
    }
    if (this.#tty) {
      // Docker ends a TTY exec's output when its stdin closes: a terminal's EOF is typed instead.
      await this.#send(TERMINAL_EOF);
      this.#stdinClosed = true;
      return;
    }
    this.#stdinClosed = true;
    // Half-close: Docker then closes the command's stdin, and its output still comes.
    await new Promise<void>((resolve) => this.#socket.end(() => resolve()));
  }

  async resize(size: TerminalSize): Promise<void> {
    if (!this.#tty) return;
    checkSize(size, this.#details);
    const next = this.#resizing.then(() => this.#resize(size));
    this.#resizing = next.catch(() => undefined);
    await next;
  }

  async signal(name: string): Promise<void> {
    const number: number | undefined = Object.hasOwn(constants.signals, name) ? constants.signals[name as NodeJS.Signals] : undefined;
    if (number === undefined) {
      throw new VmctlError("INVALID_ARGUMENT", `no such signal: ${JSON.stringify(name)} (give its name, like "SIGTERM")`, { details: { ...this.#details, field: "signal" } });
    }
    await this.#sendSignal(number, name as NodeJS.Signals);
  }

  cancel(): void {
    if (this.#cancelled) return;
    this.#cancelled = true;
    this.#socket.destroy();
    this.#outputOver();
    // Docker has no call to end an exec (and a closed connection does not end it).
    this.#sendSignal(constants.signals.SIGKILL, "SIGKILL").catch(() => undefined);
  }

  // ---- internals ----

  async *#output(): AsyncGenerator<ExecOutput> {
    const demuxer = this.#tty ? undefined : new FrameDemuxer();
    let ended = false;
    try {
      for await (const data of this.#socket as AsyncIterable<Buffer>) {
        const pieces: ExecOutput[] = demuxer ? demuxer.push(data) : [{ stream: "stdout", data }];
        if (pieces.length === 0) continue;
        this.#couldNotStart ??= await this.#startFailed();
        for (const piece of pieces) yield this.#couldNotStart ? this.#failureReason(piece) : piece;
      }
      if (demuxer && !demuxer.atFrameBoundary) {
        throw new VmctlError("UNAVAILABLE", "the Docker daemon's connection ended inside an output frame of the exec", { details: this.#details });
      }
      ended = true;
    } catch (err) {
      if (this.#cancelled) return;
      if (err instanceof VmctlError) throw err;
      throw new VmctlError("UNAVAILABLE", `reading the exec's output from the Docker daemon failed: ${(err as Error).message}`, { cause: err, details: this.#details });
    } finally {
      // A reader that stops early will never read the rest: the command must not wait for it.
      if (!ended) this.cancel();
      this.#outputOver();
    }
  }

  /**
   * Docker could not start the command, and this output is its reason: it records exit
   * 126 and never a pid. A command that runs gets its pid, though it may print before
   * Docker records it (and Docker may record a failure just after writing its reason):
   * so this waits, briefly, for one or the other.
   */
  async #startFailed(): Promise<boolean> {
    const deadline = Date.now() + EXIT_RECORD_WAIT_MS;
    for (;;) {
      const status = await this.#attachment.inspect().catch(() => undefined);
      if (status === undefined || status.pid !== 0 || Date.now() > deadline) return false;
      if (status.exitCode !== null) return true;
      await sleep(POLL_MS);
    }
  }

  /** Docker's reason for not starting the command goes where a shell would say it: stderr (the terminal with a TTY). */
  #failureReason(piece: ExecOutput): ExecOutput {
    if (this.#failureText.length < FAILURE_TEXT_BYTES) this.#failureText += Buffer.from(piece.data).toString("utf8", 0, FAILURE_TEXT_BYTES);
    return { stream: this.#tty ? "stdout" : "stderr", data: piece.data };
  }

  async #exit(): Promise<ExecExit> {
    const deadline = Date.now() + EXIT_RECORD_WAIT_MS;
    for (;;) {
      const status = await this.#attachment.inspect();
      if (!status.running && status.exitCode !== null) return this.#exitOf({ ...status, exitCode: status.exitCode });
      if (Date.now() > deadline) {
        const why = this.#cancelled ? "after cancel" : "after its output ended";
        throw new VmctlError("UNAVAILABLE", `the exec'd command still runs ${EXIT_RECORD_WAIT_MS} ms ${why}`, { details: this.#details });
      }
      await sleep(POLL_MS);
    }
  }

  #exitOf(status: ExecStatus & { readonly exitCode: number }): ExecExit {
    // A connection closed under a running exec makes Docker record 126 whatever became of the command: the kill says.
    const killed = this.#signalsSent.get(constants.signals.SIGKILL);
    if (this.#cancelled && killed !== undefined) return { code: null, signal: killed };
    if (status.pid === 0) return { code: startFailureCode(this.#failureText) };
    return ranExit(status.exitCode, this.#signalsSent);
  }

  async #send(data: Uint8Array): Promise<void> {
    if (this.#cancelled || this.#socket.destroyed || !this.#socket.writable) throw this.#refused("write to the command's stdin: the exec has ended");
    // The callback comes once the kernel took the bytes: a command not reading its stdin
    // holds the writer back. Node calls back without an error for a write the socket's
    // destruction dropped: that one was not taken either.
    await new Promise<void>((resolve, reject) =>
      this.#socket.write(data, (err) => {
        if (err) reject(this.#refused(`write to the command's stdin: ${err.message}`, err));
        else if (this.#socket.destroyed) reject(this.#refused("write to the command's stdin: the exec ended (or was cancelled) before the command took it"));
        else resolve();
      }),
    );
  }

  async #resize(size: TerminalSize): Promise<void> {
    try {
      await this.#attachment.resize(size);
    } catch (err) {
      // A command that has ended (or never started) has no terminal left to resize.
      const status = await this.#attachment.inspect().catch(() => undefined);
      if (this.#cancelled || status === undefined || status.exitCode !== null) return;
      throw err;
    }
  }

  async #sendSignal(number: number, name: NodeJS.Signals): Promise<void> {
    this.#hostProcess ??= execHostProcess(() => this.#attachment.inspect(), this.#details);
    const target = await this.#hostProcess;
    if (target === undefined) return; // it has ended: nothing to signal
    this.#signalsSent.set(number, name);
    signalProcess(target, name);
  }

  #refused(message: string, cause?: unknown): VmctlError {
    return new VmctlError("FAILED_PRECONDITION", `cannot ${message}`, { details: this.#details, ...(cause === undefined ? {} : { cause }) });
  }
}

/** A terminal size Docker takes: whole cells, at least one each way. */
function checkSize(size: TerminalSize, details: ErrorDetails): void {
  const ok = (n: number): boolean => Number.isInteger(n) && n >= 1 && n <= MAX_TERMINAL_CELLS;
  if (!ok(size.rows) || !ok(size.cols)) {
    throw new VmctlError("INVALID_ARGUMENT", `a terminal size is whole rows and columns from 1 to ${MAX_TERMINAL_CELLS} (got ${size.rows}x${size.cols})`, {
      details: { ...details, field: "size" },
    });
  }
}
