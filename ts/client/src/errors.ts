// The client's side of the error edge: a gRPC status (named like VmctlError codes) and
// its trailing metadata back into the VmctlError the engine threw; Node and connection
// failures into UNAVAILABLE.
import { Metadata, status as GrpcStatus, type ServiceError } from "@grpc/grpc-js";
import { isErrorCode, VmctlError, type ErrorCode, type ErrorDetails } from "@vmctl/core/contract";


const DETAIL_KEYS = { field: "vmctl-field", serviceId: "vmctl-service-id", target: "vmctl-target" } as const;

function isServiceError(err: unknown): err is ServiceError {
  return err instanceof Error && typeof (err as Partial<ServiceError>).code === "number" && "details" in err;
}

/** Any failure of a call to vmctld as a VmctlError. `socketPath` makes "not running" readable. */
export function errorFromGrpc(err: unknown, socketPath: string): VmctlError {
  if (err instanceof VmctlError) return err;
  if (!isServiceError(err)) return VmctlError.from(err);
  const name = GrpcStatus[err.code] ?? "UNKNOWN";
  const metadata = err.metadata instanceof Metadata ? err.metadata : undefined;
  const details: { -readonly [K in keyof ErrorDetails]: ErrorDetails[K] } = {};
  for (const [key, header] of Object.entries(DETAIL_KEYS)) {
    const value = metadata?.get(header)[0];
    if (typeof value === "string") details[key as keyof ErrorDetails] = value;
  }
  // No answer at all (nothing listening, or the daemon went away mid-call).
  if (err.code === GrpcStatus.UNAVAILABLE && Object.keys(details).length === 0 && /No connection established|connect E|Connection dropped|ECONNRESET|read ECONN/i.test(err.details)) {
    return new VmctlError("UNAVAILABLE", `cannot reach vmctld at ${socketPath}: ${err.details}`, { cause: err });
  }
  const code: ErrorCode = isErrorCode(name) ? name : "INTERNAL";
  return new VmctlError(code, err.details || err.message, { cause: err, details });
}
