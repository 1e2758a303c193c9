// The VMM client's side of the error edge: every failure is the project's one error class,
// VmctlError. A gRPC status is read by @vmctl/proto's errorFromStatus, as the orchestrator
// client reads vmctld's (the VMM's field, e.g. `drive.path_on_host`, is in its details: see
// vmm/src/api/status.rs). Anything else is VmctlError.from's (Node errno codes included).
import { VmctlError } from "@vmctl/core/contract";
import { errorFromStatus } from "@vmctl/proto";

/**
 * Anything thrown by grpc-js or Node as a VmctlError, keeping the cause. A VMM that is not
 * listening yet (its socket not made, or nothing accepting on it) comes as a status too:
 * grpc-js answers UNAVAILABLE itself, the one rule for "not there yet" (its ENOENT or
 * ECONNREFUSED is only in the status's text), so no errno needs a special case here.
 */
export function fromGrpc(err: unknown): VmctlError {
  return errorFromStatus(err) ?? VmctlError.from(err);
}
