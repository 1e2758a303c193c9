// A command running in a service, over one Exec call: the same ExecProcess a target's
// controller hands the engine, so a caller treats a remote exec like a local one. Output
// is read from the call only as the caller iterates (grpc-js asks the server for more
// only then: HTTP/2 flow control slows the command to the caller's pace).
import type * as grpc from "@grpc/grpc-js";
import { VmctlError, type ExecExit, type ExecOutput, type ExecProcess, type ExecRequest, type TerminalSize } from "@vmctl/core/contract";
import { execOutputFromProto, execStartToProto, type vmctl } from "@vmctl/proto";
import { errorFromGrpc } from "./errors.js";

/** Largest stdin message: well under the server's 4 MiB message limit. */
const STDIN_CHUNK_BYTES = 256 * 1024;

export type ExecCall = grpc.ClientDuplexStream<vmctl.v1.IExecInput, vmctl.v1.ExecOutput>;

/** Sends the start on `call` and resolves once the command runs; rejects with the call's error. */
export async function startExec(call: ExecCall, ref: string, request: ExecRequest, socketPath: string): Promise<ExecProcess> {
  // Until the process listens, a failure must not be an unhandled 'error' event.
  const early = (): void => undefined;
  call.on("error", early);
  const messages = (call as AsyncIterable<vmctl.v1.ExecOutput>)[Symbol.asyncIterator]();
  try {
    call.write(execStartToProto(ref, request));
    const first = await messages.next();
    if (first.done || execOutputFromProto(first.value)?.kind !== "started") {
      throw new VmctlError("UNAVAILABLE", "vmctld ended the exec call before the command started");
    }
    return new RemoteExecProcess(call, messages, socketPath);
  } catch (err) {
    call.cancel();
    throw errorFromGrpc(err, socketPath);
  } finally {
    call.off("error", early);
  }
}

class RemoteExecProcess implements ExecProcess {
  readonly exited: Promise<ExecExit>;
  readonly #call: ExecCall;
  readonly #messages: AsyncIterator<vmctl.v1.ExecOutput>;
  readonly #socketPath: string;
  #settle!: { resolve: (exit: ExecExit) => void; reject: (err: VmctlError) => void };
  #ended = false;
  #reading = false;
  #cancelled = false;

  constructor(call: ExecCall, messages: AsyncIterator<vmctl.v1.ExecOutput>, socketPath: string) {
    this.#call = call;
    this.#messages = messages;
    this.#socketPath = socketPath;
    this.exited = new Promise<ExecExit>((resolve, reject) => (this.#settle = { resolve, reject }));
    // Whoever awaits `exited` sees the failure; nobody awaiting it is not a crash.
    this.exited.catch(() => undefined);
    call.on("error", (err: unknown) => this.#end(errorFromGrpc(err, socketPath)));
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<ExecOutput> {
    if (this.#reading) throw new VmctlError("FAILED_PRECONDITION", "an exec's output is read once");
    this.#reading = true;
    try {
      for (;;) {
        const next = await this.#messages.next();
        if (next.done) break;
        const message = execOutputFromProto(next.value);
        if (message?.kind === "output") yield message.output;
        else if (message?.kind === "exited") {
          this.#call.end();
          this.#end(message.exit);
        }
      }
    } catch (err) {
      // After cancel() the call's CANCELLED is the expected end, not a failure to report.
      if (this.#cancelled) return;
      const error = errorFromGrpc(err, this.#socketPath);
      this.#end(error);
      throw error;
    } finally {
      // A reader that stopped early ends the call, and with it the command.
      if (!this.#ended) this.cancel();
    }
    if (!this.#ended) {
      const error = new VmctlError("UNAVAILABLE", "vmctld ended the exec call before the command's exit");
      this.#end(error);
      throw error;
    }
  }

  async write(data: Uint8Array): Promise<void> {
    for (let offset = 0; offset < data.byteLength; offset += STDIN_CHUNK_BYTES) {
      await this.#send({ stdin: data.subarray(offset, offset + STDIN_CHUNK_BYTES) });
    }
  }

  closeStdin(): Promise<void> {
    return this.#send({ closeStdin: {} });
  }

  resize(size: TerminalSize): Promise<void> {
    return this.#send({ resize: { rows: size.rows, cols: size.cols } });
  }

  signal(name: string): Promise<void> {
    return this.#send({ signal: name });
  }

  /** Ends the call: vmctld ends the command; `exited` rejects with CANCELLED. */
  cancel(): void {
    if (this.#ended) return;
    this.#cancelled = true;
    this.#end(new VmctlError("CANCELLED", "the exec was cancelled"));
    this.#call.cancel();
  }

  #send(input: vmctl.v1.IExecInput): Promise<void> {
    if (this.#ended) return Promise.reject(new VmctlError("FAILED_PRECONDITION", "the command has ended"));
    return new Promise((resolve, reject) => {
      this.#call.write(input, (err: unknown) => (err ? reject(errorFromGrpc(err, this.#socketPath)) : resolve()));
    });
  }

  #end(outcome: ExecExit | VmctlError): void {
    if (this.#ended) return;
    this.#ended = true;
    if (outcome instanceof VmctlError) this.#settle.reject(outcome);
    else this.#settle.resolve(outcome);
  }
}
