// One command running in the guest: its output pulled from the Exec stream as the caller
// reads it (grpc-js asks for the next message only then, so HTTP/2 flow control slows the
// agent, and the command, down to the caller's pace: nothing is buffered whole), its
// input, resizes and signals written to the same stream, its exit last.
import type * as grpc from "@grpc/grpc-js";
import { VmctlError } from "@vmctl/core/contract";
import type { agent } from "@vmctl/proto";
import { fromGrpc } from "@vmctl/vmm-client";
import { bufferOf, execExitFromProto } from "./convert.js";
import type { ExecExit, OutputChunk } from "./types.js";

/** Largest stdin message: well under the agent's 4 MiB message limit (tonic's default). */
const STDIN_CHUNK_BYTES = 64 * 1024;

export type ExecCall = grpc.ClientDuplexStream<agent.v1.IExecInput, agent.v1.ExecOutput>;

/**
 * A running command. Read its output with `for await (const chunk of session)`; `exited`
 * settles once the output has been read to its end (the exit is the stream's last
 * message, behind the output: an unread output holds the command up, by design).
 */
export class ExecSession implements AsyncIterable<OutputChunk> {
  /** The command's pid in the guest; undefined when it could not be run (127, 126). */
  readonly pid: number | undefined;
  /** How the command ended; rejects with the call's error (CANCELLED after `cancel()`). */
  readonly exited: Promise<ExecExit>;

  readonly #call: ExecCall;
  readonly #messages: AsyncIterator<agent.v1.ExecOutput>;
  #pending: agent.v1.ExecOutput | undefined;
  #settle!: { resolve: (exit: ExecExit) => void; reject: (err: VmctlError) => void };
  #done = false;
  #cancelled = false;
  #reading = false;

  private constructor(call: ExecCall, messages: AsyncIterator<agent.v1.ExecOutput>, first: agent.v1.ExecOutput | undefined) {
    this.#call = call;
    this.#messages = messages;
    this.exited = new Promise<ExecExit>((resolve, reject) => (this.#settle = { resolve, reject }));
    // Whoever awaits `exited` sees the failure; nobody awaiting it is not a crash.
    this.exited.catch(() => undefined);
    call.on("error", (err: unknown) => this.#fail(fromGrpc(err)));
    if (first?.output === "started") this.pid = first.started?.pid ?? undefined;
    else this.#pending = first;
  }

  /**
   * Sends `start` on `call` and waits for the agent's first answer: the command started
   * (its pid), or could not be run (its 127/126 report, read through the iteration), or
   * the call failed (INVALID_ARGUMENT naming the field, FAILED_PRECONDITION for a second
   * workload, UNAVAILABLE for an agent that is not there), thrown as a VmctlError.
   */
  static async open(call: ExecCall, start: agent.v1.IExecStart): Promise<ExecSession> {
    // Until the session listens, a failure must not be an unhandled 'error' event.
    const early = (): void => undefined;
    call.on("error", early);
    const messages = (call as AsyncIterable<agent.v1.ExecOutput>)[Symbol.asyncIterator]();
    try {
      call.write({ start });
      const first = await messages.next();
      return new ExecSession(call, messages, first.done ? undefined : first.value);
    } catch (err) {
      call.cancel();
      throw fromGrpc(err);
    } finally {
      call.off("error", early);
    }
  }

  /** The output in order, per stream; ends after the exit (then `exited` is settled). */
  async *[Symbol.asyncIterator](): AsyncGenerator<OutputChunk> {
    if (this.#reading) throw new VmctlError("FAILED_PRECONDITION", "an exec session's output is read once");
    this.#reading = true;
    try {
      for (;;) {
        const message = this.#pending ?? (await this.#next());
        this.#pending = undefined;
        if (message === undefined) break;
        if (message.output === "stdout" && message.stdout) yield { stream: "stdout", data: bufferOf(message.stdout) };
        else if (message.output === "stderr" && message.stderr) yield { stream: "stderr", data: bufferOf(message.stderr) };
        else if (message.output === "exited" && message.exited) {
          this.#done = true;
          // Half-close: for the workload, the agent's sign that its exit was read.
          this.#call.end();
          this.#settle.resolve(execExitFromProto(message.exited));
        }
      }
    } catch (err) {
      const error = fromGrpc(err);
      this.#fail(error);
      if (!(this.#cancelled && error.code === "CANCELLED")) throw error;
    } finally {
      // A reader that stopped early ends the call: the agent kills an exec whose client
      // went away (never the workload).
      if (!this.#done) {
        this.cancel();
        void this.#messages.return?.();
      }
    }
    if (!this.#done && !this.#cancelled) {
      const error = new VmctlError("UNAVAILABLE", "the agent ended the exec stream before the command's exit");
      this.#fail(error);
      throw error;
    }
  }

  /** Writes to the command's stdin (started with `stdin: true`, or a tty), with backpressure. */
  async write(data: string | Uint8Array): Promise<void> {
    const bytes = typeof data === "string" ? Buffer.from(data) : data;
    for (let offset = 0; offset < bytes.byteLength; offset += STDIN_CHUNK_BYTES) {
      await this.#send({ stdin: bytes.subarray(offset, offset + STDIN_CHUNK_BYTES) });
    }
  }

  /** Ends the command's stdin (EOF; on a tty the EOF character). */
  closeStdin(): Promise<void> {
    return this.#send({ closeStdin: {} });
  }

  /** The terminal's new size (ignored without a tty). */
  resize(rows: number, cols: number): Promise<void> {
    return this.#send({ resize: { rows, cols } });
  }

  /** A signal for the command, by name ("SIGTERM", "TERM") or number ("15"). */
  signal(name: string): Promise<void> {
    return this.#send({ signal: name });
  }

  /** Ends the call: the agent kills an exec's process group; `exited` rejects with CANCELLED. */
  cancel(): void {
    if (this.#done) return;
    this.#cancelled = true;
    this.#call.cancel();
  }

  async #next(): Promise<agent.v1.ExecOutput | undefined> {
    const next = await this.#messages.next();
    return next.done ? undefined : next.value;
  }

  #send(input: agent.v1.IExecInput): Promise<void> {
    if (this.#done || this.#cancelled) return Promise.reject(new VmctlError("FAILED_PRECONDITION", "the exec session has ended"));
    return new Promise((resolve, reject) => {
      this.#call.write(input, (err: unknown) => (err ? reject(fromGrpc(err)) : resolve()));
    });
  }

  #fail(error: VmctlError): void {
    this.#done = true;
    this.#settle.reject(error);
  }
}
