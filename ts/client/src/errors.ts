// The client's side of the error edge: a gRPC status (named like VmctlError codes) and
// its rich error details (read by @vmctl/proto's errorFromStatus, as the VMM client reads the VMM's) back into the
// VmctlError the engine threw; Node and connection failures into UNAVAILABLE.
import { status as GrpcStatus } from "@grpc/grpc-js";
import { VmctlError } from "@vmctl/core/contract";
import { errorFromStatus, isServiceError } from "@vmctl/proto";

/** Any failure of a call to vmctld as a VmctlError. `socketPath` makes "not running" readable. */
export function errorFromGrpc(err: unknown, socketPath: string): VmctlError {
  if (err instanceof VmctlError) return err;
  if (!isServiceError(err)) return VmctlError.from(err);
  const e = errorFromStatus(err) as VmctlError;
  // No answer at all (nothing listening, or the daemon went away mid-call).
  const unreachable = /No connection established|connect E|Connection dropped|ECONNRESET|read ECONN/i;
  if (err.code === GrpcStatus.UNAVAILABLE && Object.keys(e.details).length === 0 && unreachable.test(err.details)) {
    return new VmctlError("UNAVAILABLE", `cannot reach vmctld at ${socketPath}: ${err.details}`, { cause: err });
  }
  return e;
}
