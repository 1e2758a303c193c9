// What vmctld must answer to any request, whatever it holds (docs/api-limits.md, "Status
// codes"): a status from the method's documented set — never UNKNOWN or INTERNAL for
// client input — INVALID_ARGUMENT naming the field (in the details and the message), and
// an answer before the deadline for every call that is not meant to wait; a progress
// stream (CreateServiceWithProgress, PullImage) is progress events, then its result only
// when it succeeded.
import * as grpc from "@grpc/grpc-js";
import { vmctl } from "@vmctl/proto";
import type { RawOutcome } from "../helpers/raw-client.js";
import type { MethodName } from "./requests.js";

const S = grpc.status;

/**
 * Statuses a method may answer to client input. Every method may also answer
 * INVALID_ARGUMENT (bad input), RESOURCE_EXHAUSTED (a request over the 4 MiB message
 * limit) and CANCELLED / DEADLINE_EXCEEDED (the client's own cancel or deadline; for the
 * methods that do not wait, the suite refuses a deadline that runs out).
 */
export const DOCUMENTED: Readonly<Record<MethodName, readonly grpc.status[]>> = {
  createService: [S.OK, S.NOT_FOUND, S.ALREADY_EXISTS, S.FAILED_PRECONDITION],
  startService: [S.OK, S.NOT_FOUND, S.FAILED_PRECONDITION],
  stopService: [S.OK, S.NOT_FOUND, S.FAILED_PRECONDITION],
  deleteService: [S.OK, S.NOT_FOUND, S.FAILED_PRECONDITION],
  getService: [S.OK, S.NOT_FOUND],
  listServices: [S.OK],
  watchServices: [S.OK, S.NOT_FOUND, S.RESOURCE_EXHAUSTED],
  logs: [S.OK, S.NOT_FOUND],
  waitService: [S.OK, S.NOT_FOUND],
  listTargets: [S.OK],
  pauseService: [S.OK, S.NOT_FOUND, S.FAILED_PRECONDITION],
  resumeService: [S.OK, S.NOT_FOUND, S.FAILED_PRECONDITION],
  exec: [S.OK, S.NOT_FOUND, S.FAILED_PRECONDITION],
  copyOut: [S.OK, S.NOT_FOUND, S.FAILED_PRECONDITION],
  createServiceWithProgress: [S.OK, S.NOT_FOUND, S.ALREADY_EXISTS, S.FAILED_PRECONDITION],
  // What a pull can answer for what the suite sends (requests.ts, "Image references"):
  // NOT_FOUND (no such archive, a digest alone), UNAVAILABLE (the registry at
  // 127.0.0.1:9 refuses the connection; vmctld's own answer, with its ErrorInfo). The
  // proto also documents UNAUTHENTICATED, PERMISSION_DENIED and DATA_LOSS, for registries
  // that answer and archives that exist: the suite reaches neither, so they would be wrong here.
  pullImage: [S.OK, S.NOT_FOUND, S.UNAVAILABLE],
  listImages: [S.OK],
  inspectImage: [S.OK, S.NOT_FOUND],
  removeImage: [S.OK, S.NOT_FOUND, S.FAILED_PRECONDITION],
  pruneImages: [S.OK],
  // UNIMPLEMENTED never: vmctld's engine prunes. A target that cannot list is in the answer, not a status.
  pruneSystem: [S.OK],
  // Networks: a name taken (ALREADY_EXISTS); FAILED_PRECONDITION never for input the
  // daemon can take — its host networking is real (in the suite's own network namespace).
  createNetwork: [S.OK, S.ALREADY_EXISTS],
  listNetworks: [S.OK],
  getNetwork: [S.OK, S.NOT_FOUND],
  // A network with services on it; the suite's target claims no network, so none ever has.
  deleteNetwork: [S.OK, S.NOT_FOUND],
};
const ALWAYS = [S.INVALID_ARGUMENT, S.RESOURCE_EXHAUSTED, S.CANCELLED];

/** Methods whose answer legitimately waits for something else (an exit, more output, more events). */
export const WAITING: ReadonlySet<MethodName> = new Set<MethodName>(["watchServices", "logs", "waitService"]);

/** Phases of an image pull's progress (docs/api-limits.md, "Progress events"). */
export const PULL_PHASES: ReadonlySet<string> = new Set(["resolve", "download", "downloaded", "exists", "copy", "unpack", "done", "mkfs", "ready"]);

/** The progress streams: how each message decodes, and which field holds the final result. */
interface StreamEvent {
  readonly progress?: vmctl.v1.IProgress | null;
  /** The final result (a Service, an Image), if this message is it. */
  readonly result?: unknown;
}
const PROGRESS_STREAMS: Partial<Record<MethodName, { decode(bytes: Uint8Array): StreamEvent; result: string }>> = {
  createServiceWithProgress: {
    decode: (b) => {
      const e = vmctl.v1.CreateServiceEvent.decode(b);
      return { progress: e.progress, result: e.service };
    },
    result: "service",
  },
  pullImage: {
    decode: (b) => {
      const e = vmctl.v1.PullImageEvent.decode(b);
      return { progress: e.progress, result: e.image };
    },
    result: "image",
  },
};

/** What is wrong with the messages of a progress stream: progress events, then the result exactly when the call succeeded. */
function streamShape(method: MethodName, outcome: RawOutcome): string | undefined {
  const stream = PROGRESS_STREAMS[method];
  if (stream === undefined) return undefined;
  let events: StreamEvent[];
  try {
    events = outcome.responses.map((bytes) => stream.decode(bytes));
  } catch (err) {
    return `a message of the stream does not decode: ${String(err)}`;
  }
  for (const [i, event] of events.entries()) {
    const isResult = event.result != null;
    const last = i === events.length - 1;
    if (isResult && !(last && outcome.code === S.OK)) return `a ${stream.result} as message ${i + 1} of ${events.length} of a stream that ended ${grpc.status[outcome.code]}`;
    if (!isResult && event.progress == null) return `message ${i + 1} is neither progress nor ${stream.result}`;
    if (!isResult && method === "pullImage" && !PULL_PHASES.has(event.progress?.phase ?? "")) return `a pull's progress in the undocumented phase ${JSON.stringify(event.progress?.phase)}`;
  }
  if (outcome.code === S.OK && events.at(-1)?.result == null) return `${method} ended OK without its ${stream.result}`;
  return undefined;
}

/** A problem with one answer, or undefined when it keeps every rule. */
export function violation(method: MethodName, outcome: RawOutcome): string | undefined {
  const name = grpc.status[outcome.code] ?? String(outcome.code);
  if (outcome.code === S.UNKNOWN || outcome.code === S.INTERNAL) return `${name} for client input: ${outcome.message}`;
  if (outcome.code === S.DEADLINE_EXCEEDED) {
    // Sent by vmctld itself (its rich error model), not the client's deadline running out.
    if (outcome.rich?.errorInfo?.domain === "vmctl.io") return `vmctld answered DEADLINE_EXCEEDED itself, which the API keeps for the client's own deadline: ${outcome.message}`;
    return WAITING.has(method) ? undefined : `no answer before the deadline (${outcome.elapsedMs} ms)`;
  }
  // UNAVAILABLE is vmctld gone (never an answer to input), except where a method documents
  // it as its own answer (a registry that cannot be reached): then it carries vmctld's ErrorInfo.
  const ownUnavailable = DOCUMENTED[method].includes(S.UNAVAILABLE) && outcome.rich?.errorInfo?.domain === "vmctl.io";
  if (outcome.code === S.UNAVAILABLE && !ownUnavailable) return `UNAVAILABLE: ${outcome.message}`;
  const shape = streamShape(method, outcome);
  if (shape !== undefined) return shape;
  if (!DOCUMENTED[method].includes(outcome.code) && !ALWAYS.includes(outcome.code)) return `${name} is not a documented answer of ${method}: ${outcome.message}`;
  if ([...outcome.message].length > 300) return `a message of ${outcome.message.length} characters`;
  // Errors from vmctld itself (not gRPC's own, such as a message over the size limit)
  // carry the rich error model: ErrorInfo of domain vmctl.io whose reason is the code.
  const own = outcome.code !== S.RESOURCE_EXHAUSTED && outcome.code !== S.CANCELLED && outcome.code !== S.OK;
  if (own && (outcome.rich?.errorInfo?.domain !== "vmctl.io" || outcome.rich.errorInfo.reason !== name || outcome.rich.code !== outcome.code)) {
    return `${name} without its google.rpc.Status/ErrorInfo: ${JSON.stringify(outcome.rich)}`;
  }
  if (outcome.code === S.INVALID_ARGUMENT) {
    const field = outcome.details.field;
    const violation = outcome.rich?.fieldViolations?.[0]?.field;
    if (field !== undefined && violation !== field) return `INVALID_ARGUMENT on ${JSON.stringify(field)} whose BadRequest names ${JSON.stringify(violation)}`;
    // A request that does not decode at all cannot name a field; it names its message type.
    if (field === undefined || field === "") {
      return /^malformed vmctl\.v1\.\w+: /.test(outcome.message) ? undefined : `INVALID_ARGUMENT naming no field: ${outcome.message}`;
    }
    if (!outcome.message.includes(field.slice(0, 40))) return `INVALID_ARGUMENT for field ${JSON.stringify(field)} whose message does not name it: ${outcome.message}`;
  }
  return undefined;
}
