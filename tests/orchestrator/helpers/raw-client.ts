// A raw gRPC client for vmctld: bytes in, bytes out, through @grpc/grpc-js's generic
// client with identity serializers. Unlike @vmctl/client it sends anything — wrong
// types, unknown fields, invalid UTF-8, garbage — so tests can play a hostile client.
import * as grpc from "@grpc/grpc-js";
import { errorFromGrpc } from "@vmctl/client";
import type { ErrorDetails } from "@vmctl/client";
import { decodeRichStatus, OrchestratorService, STATUS_DETAILS_KEY, type RichStatus } from "@vmctl/proto";

export type MethodName = keyof typeof OrchestratorService;
export const METHODS = Object.keys(OrchestratorService) as MethodName[];

const identity = (bytes: Buffer): Buffer => bytes;
const RAW_SERVICE = Object.fromEntries(
  Object.entries(OrchestratorService).map(([name, m]) => [
    name,
    { path: m.path, requestStream: m.requestStream, responseStream: m.responseStream, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity },
  ]),
) as grpc.ServiceDefinition;
const RawClient = grpc.makeGenericClientConstructor(RAW_SERVICE, "RawOrchestrator");

export interface RawOutcome {
  /** grpc.status.OK when the call succeeded (for streams: ended without error). */
  readonly code: grpc.status;
  readonly message: string;
  /** VmctlError.details rebuilt from the rich status, as @vmctl/client reads them. */
  readonly details: ErrorDetails;
  /** The google.rpc.Status of `grpc-status-details-bin`, as any client would decode it. */
  readonly rich?: RichStatus;
  /** Response messages (one for unary calls). */
  readonly responses: Buffer[];
  readonly elapsedMs: number;
}

export class RawOrchestrator {
  readonly #client: grpc.Client;

  constructor(readonly socketPath: string) {
    this.#client = new RawClient(`unix://${socketPath}`, grpc.credentials.createInsecure(), {
      "grpc.max_receive_message_length": 16 * 1024 * 1024,
      "grpc.max_send_message_length": 16 * 1024 * 1024,
    });
  }

  /** Sends `bytes` to `method` with a deadline; never rejects. Streams are read to their end (or the deadline). */
  call(method: MethodName, bytes: Buffer, deadlineMs: number): Promise<RawOutcome> {
    const started = Date.now();
    const { path, requestStream, responseStream } = OrchestratorService[method];
    const deadline = Date.now() + deadlineMs;
    const outcome = (err: grpc.ServiceError | null, responses: Buffer[]): RawOutcome => this.#outcome(err, responses, started);
    return new Promise((resolve) => {
      if (!responseStream) {
        this.#client.makeUnaryRequest(path, identity, identity, bytes, new grpc.Metadata(), { deadline }, (err, response) =>
          resolve(outcome(err, response === undefined ? [] : [response])),
        );
        return;
      }
      const responses: Buffer[] = [];
      // A stream both ways (Exec) gets `bytes` as its one message, then the client's end.
      const stream = requestStream
        ? this.#client.makeBidiStreamRequest(path, identity, identity, new grpc.Metadata(), { deadline })
        : this.#client.makeServerStreamRequest(path, identity, identity, bytes, new grpc.Metadata(), { deadline });
      if (requestStream) (stream as grpc.ClientDuplexStream<Buffer, Buffer>).end(bytes);
      stream.on("data", (m: Buffer) => responses.push(m));
      stream.on("error", (err: grpc.ServiceError) => resolve(outcome(err, responses)));
      stream.on("end", () => resolve(outcome(null, responses)));
    });
  }

  /**
   * Sends `messages` on a stream both ways (Exec), one after another, then the client's
   * end; reads the answers to their end (or the deadline). Never rejects.
   */
  duplex(method: MethodName, messages: readonly Buffer[], deadlineMs: number): Promise<RawOutcome> {
    const started = Date.now();
    const { path } = OrchestratorService[method];
    return new Promise((resolve) => {
      const responses: Buffer[] = [];
      const stream = this.#client.makeBidiStreamRequest(path, identity, identity, new grpc.Metadata(), { deadline: Date.now() + deadlineMs });
      const finish = (err: grpc.ServiceError | null): void => resolve(this.#outcome(err, responses, started));
      stream.on("data", (m: Buffer) => responses.push(m));
      stream.on("error", (err: grpc.ServiceError) => finish(err));
      stream.on("end", () => finish(null));
      for (const message of messages) stream.write(message);
      stream.end();
    });
  }

  /** What a call ended with, as a test checks it. */
  #outcome(err: grpc.ServiceError | null, responses: Buffer[], started: number): RawOutcome {
    const elapsedMs = Date.now() - started;
    if (err === null) return { code: grpc.status.OK, message: "", details: {}, responses, elapsedMs };
    const raw = err.metadata?.get(STATUS_DETAILS_KEY)[0];
    const rich = raw instanceof Buffer ? decodeRichStatus(raw) : undefined;
    return { code: err.code, message: err.details, details: errorFromGrpc(err, this.socketPath).details, ...(rich === undefined ? {} : { rich }), responses, elapsedMs };
  }

  close(): void {
    this.#client.close();
  }
}
