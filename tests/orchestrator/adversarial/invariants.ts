// What vmctld must answer to any request, whatever it holds (docs/api-limits.md, "Status
// codes"): a status from the method's documented set — never UNKNOWN or INTERNAL for
// client input — INVALID_ARGUMENT naming the field (in the details and the message), and
// an answer before the deadline for every call that is not meant to wait.
import * as grpc from "@grpc/grpc-js";
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
  execService: [S.OK, S.NOT_FOUND, S.FAILED_PRECONDITION],
};
const ALWAYS = [S.INVALID_ARGUMENT, S.RESOURCE_EXHAUSTED, S.CANCELLED];

/** Methods whose answer legitimately waits for something else (an exit, more output, more events). */
export const WAITING: ReadonlySet<MethodName> = new Set<MethodName>(["watchServices", "logs", "waitService"]);

/** A problem with one answer, or undefined when it keeps every rule. */
export function violation(method: MethodName, outcome: RawOutcome): string | undefined {
  const name = grpc.status[outcome.code] ?? String(outcome.code);
  if (outcome.code === S.UNKNOWN || outcome.code === S.INTERNAL) return `${name} for client input: ${outcome.message}`;
  if (outcome.code === S.DEADLINE_EXCEEDED) {
    // Sent by vmctld itself (its rich error model), not the client's deadline running out.
    if (outcome.rich?.errorInfo?.domain === "vmctl.io") return `vmctld answered DEADLINE_EXCEEDED itself, which the API keeps for the client's own deadline: ${outcome.message}`;
    return WAITING.has(method) ? undefined : `no answer before the deadline (${outcome.elapsedMs} ms)`;
  }
  if (outcome.code === S.UNAVAILABLE) return `UNAVAILABLE: ${outcome.message}`;
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
