// The plumbing every vmctld method shares: a request that did not decode is answered
// INVALID_ARGUMENT, the engine call gets an AbortSignal that fires when the client goes
// away, and the answer — or the error, through grpc-status.ts — is sent in a way that
// cannot throw into the void: whatever goes wrong while building or sending an error falls
// back to a plain status, never to an unhandled rejection (which would end the daemon).
import { once, type EventEmitter } from "node:events";
import type { Readable } from "node:stream";
import * as grpc from "@grpc/grpc-js";
import { VmctlError, type Logger } from "@vmctl/core";
import { MalformedMessage } from "@vmctl/proto";
import { plainStatus, toServiceError, type StatusObject } from "./grpc-status.js";

export type Unary<Req, Res> = (request: Req, signal: AbortSignal) => Promise<Res> | Res;
export type Streaming<Req, Res> = (request: Req, signal: AbortSignal) => AsyncIterable<Res>;
export type Duplex<Req, Res> = (requests: AsyncIterable<Req>, signal: AbortSignal) => AsyncIterable<Res>;

/** Open calls, so shutdown can end streams that would otherwise run forever. */
export class CallTracker {
  readonly #open = new Set<AbortController>();

  track(): AbortController {
    const abort = new AbortController();
    this.#open.add(abort);
    return abort;
  }

  done(abort: AbortController): void {
    this.#open.delete(abort);
  }

  abortAll(): void {
    for (const abort of this.#open) abort.abort();
  }
}

/** The request, or the INVALID_ARGUMENT a request that did not decode deserves. */
export function decoded<Req>(request: Req | MalformedMessage): Req {
  if (request instanceof MalformedMessage) {
    throw new VmctlError("INVALID_ARGUMENT", request.message, request.field === undefined ? {} : { details: { field: request.field } });
  }
  return request;
}

export class RpcHandlers {
  constructor(
    private readonly log: Logger,
    private readonly calls: CallTracker,
  ) {}

  /** The status for `err`, logged (at error level only when it is our failure, not the client's). */
  #report(method: string, err: unknown): StatusObject {
    try {
      const status = toServiceError(err);
      if (status.code === grpc.status.INTERNAL || status.code === grpc.status.UNKNOWN) this.log.error("request failed", { method, err });
      else this.log.debug("request refused", { method, code: grpc.status[status.code], message: status.details });
      return status;
    } catch {
      return plainStatus(grpc.status.INTERNAL, `${method} failed`);
    }
  }

  /** Runs `send`; if it throws, logs and tries `fallback` once; never throws. */
  #safely(method: string, send: () => void, fallback: () => void): void {
    try {
      send();
    } catch (err) {
      try {
        this.log.error("could not send an answer; sending a plain status", { method, err });
        fallback();
      } catch {
        // The call is beyond answering (the client is gone); the daemon is not.
      }
    }
  }

  unary<Req, Res>(method: string, fn: Unary<Req, Res>): grpc.handleUnaryCall<Req | MalformedMessage, Res> {
    return (call, callback) => {
      const abort = this.calls.track();
      call.on("cancelled", () => abort.abort());
      void (async () => {
        let outcome: { ok: true; response: Res } | { ok: false; status: StatusObject };
        try {
          outcome = { ok: true, response: await fn(decoded(call.request), abort.signal) };
        } catch (err) {
          outcome = { ok: false, status: this.#report(method, err) };
        }
        const status = outcome.ok ? undefined : outcome.status;
        this.#safely(
          method,
          () => (outcome.ok ? callback(null, outcome.response) : callback(outcome.status)),
          () => callback(plainStatus(status?.code ?? grpc.status.INTERNAL, status?.details ?? `${method}: could not send the answer`)),
        );
      })().finally(() => this.calls.done(abort));
    };
  }

  streaming<Req, Res>(method: string, fn: Streaming<Req, Res>): grpc.handleServerStreamingCall<Req | MalformedMessage, Res> {
    return (call) => this.#serveStream(method, call, (signal) => fn(decoded(call.request), signal));
  }

  /** A stream both ways: `fn` reads the client's messages (each decoded, or INVALID_ARGUMENT) as it answers. */
  duplex<Req, Res>(method: string, fn: Duplex<Req, Res>): grpc.handleBidiStreamingCall<Req | MalformedMessage, Res> {
    return (call) => this.#serveStream(method, call, (signal) => fn(decodedAll<Req>(call), signal));
  }

  /** Writes what `answers` yields at the client's pace, then ends the call or sends the error's status. */
  #serveStream<Res>(method: string, call: AnsweringCall<Res>, answers: (signal: AbortSignal) => AsyncIterable<Res>): void {
    const abort = this.calls.track();
    // The client went away (or shutdown): the engine's iterator ends on this signal.
    call.on("cancelled", () => abort.abort());
    void (async () => {
      try {
        for await (const message of answers(abort.signal)) {
          if (abort.signal.aborted) break;
          if (!call.write(message)) await Promise.race([once(call, "drain"), once(abort.signal, "abort")]);
        }
        if (!call.cancelled) this.#safely(method, () => call.end(), () => call.destroy());
      } catch (err) {
        if (call.cancelled) return;
        const status = this.#report(method, err);
        this.#safely(
          method,
          () => call.emit("error", status),
          () => call.emit("error", plainStatus(status.code, status.details)),
        );
      }
    })().finally(() => this.calls.done(abort));
  }
}

/** What a streaming answer needs of a server-streaming or a duplex call. */
interface AnsweringCall<Res> extends EventEmitter {
  readonly cancelled: boolean;
  write(message: Res): boolean;
  end(): void;
  destroy(): void;
}

/**
 * The client's messages in order, each as `decoded` checks it, read only as they are
 * asked for (a slow consumer holds the client back through HTTP/2 flow control). Read by
 * hand, not through the stream's async iterator: that iterator destroys the call when it
 * sees an 'error' — and an error emitted on the call is how its status is sent — so the
 * status would never go out.
 */
async function* decodedAll<Req>(call: Readable): AsyncGenerator<Req> {
  for (;;) {
    const message: unknown = call.read();
    if (message !== null) {
      yield decoded(message as Req | MalformedMessage);
      continue;
    }
    if (call.readableEnded || call.destroyed) return;
    const ended = await new Promise<boolean>((resolve) => {
      const on = (event: string, value: boolean): (() => void) => {
        const listener = (): void => {
          for (const off of offs) off();
          resolve(value);
        };
        call.on(event, listener);
        return () => call.off(event, listener);
      };
      const offs = [on("readable", false), on("end", true), on("close", true), on("error", true)];
    });
    if (ended) return;
  }
}
