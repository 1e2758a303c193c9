// The client's side of the error edge: a gRPC status (named like VmctlError codes) and
// its rich error details (decoded by @vmctl/proto's decodeErrorDetails) back into the
// VmctlError the engine threw; Node and connection failures into UNAVAILABLE.
import { Metadata, status as GrpcStatus, type ServiceError } from "@grpc/grpc-js";
import { isErrorCode, VmctlError, type ErrorCode, type ErrorDetails } from "@vmctl/core/contract";
import { decodeErrorDetails, STATUS_DETAILS_KEY } from "@vmctl/proto";

/** VmctlError.details from the status's rich details (empty when there are none, or they are another domain's). */
export function detailsFromMetadata(metadata: Metadata | undefined): ErrorDetails {
  const raw = metadata?.get(STATUS_DETAILS_KEY)[0];
  return raw instanceof Uint8Array ? decodeErrorDetails(raw) : {};
}

function isServiceError(err: unknown): err is ServiceError {
  return err instanceof Error && typeof (err as Partial<ServiceError>).code === "number" && "details" in err;
}

/** Any failure of a call to vmctld as a VmctlError. `socketPath` makes "not running" readable. */
export function errorFromGrpc(err: unknown, socketPath: string): VmctlError {
  if (err instanceof VmctlError) return err;
  if (!isServiceError(err)) return VmctlError.from(err);
  const name = GrpcStatus[err.code] ?? "UNKNOWN";
  const details = detailsFromMetadata(err.metadata instanceof Metadata ? err.metadata : undefined);
  // No answer at all (nothing listening, or the daemon went away mid-call).
  if (err.code === GrpcStatus.UNAVAILABLE && Object.keys(details).length === 0 && /No connection established|connect E|Connection dropped|ECONNRESET|read ECONN/i.test(err.details)) {
    return new VmctlError("UNAVAILABLE", `cannot reach vmctld at ${socketPath}: ${err.details}`, { cause: err });
  }
  const code: ErrorCode = isErrorCode(name) ? name : "INTERNAL";
  return new VmctlError(code, err.details || err.message, { cause: err, details });
}
