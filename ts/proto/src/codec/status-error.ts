// A status a gRPC call ended with, as the project's one error class: the status name is
// the code (a name VmctlError has no kind for is INTERNAL) and its rich details (a field,
// a service) are VmctlError.details. Both clients (vmctld's and the VMM's) read statuses
// through this, so a status means the same wherever it is read.
import type { ServiceError } from "@grpc/grpc-js";
import { isErrorCode, VmctlError } from "@vmctl/core/contract";
import { STATUS_DETAILS_KEY } from "../rich-status.js";
import { decodeErrorDetails } from "./error-details.js";

/** gRPC's status names by number (grpc-js's `status` enum, without loading grpc-js here). */
const STATUS_NAMES = [
  "OK",
  "CANCELLED",
  "UNKNOWN",
  "INVALID_ARGUMENT",
  "DEADLINE_EXCEEDED",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED",
  "FAILED_PRECONDITION",
  "ABORTED",
  "OUT_OF_RANGE",
  "UNIMPLEMENTED",
  "INTERNAL",
  "UNAVAILABLE",
  "DATA_LOSS",
  "UNAUTHENTICATED",
] as const;

/** A failure grpc-js reports for a call: a status code, its text and trailers. */
export function isServiceError(err: unknown): err is ServiceError {
  return err instanceof Error && typeof (err as Partial<ServiceError>).code === "number" && "details" in err;
}

/** The status `err` carries as a VmctlError, or undefined when `err` is not a gRPC status. */
export function errorFromStatus(err: unknown): VmctlError | undefined {
  if (!isServiceError(err)) return undefined;
  const name = STATUS_NAMES[err.code] ?? "UNKNOWN";
  const raw = typeof err.metadata?.get === "function" ? err.metadata.get(STATUS_DETAILS_KEY)[0] : undefined;
  const details = raw instanceof Uint8Array ? decodeErrorDetails(raw) : {};
  return new VmctlError(isErrorCode(name) ? name : "INTERNAL", err.details || err.message, { cause: err, details });
}
