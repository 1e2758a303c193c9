// The microvm target's failures as the one error class (VmctlError), named for the service.
import { isErrorCode, VmctlError, type ErrorCode } from "@vmctl/core/contract";
import { VmmError } from "@vmctl/vmm-client";

/** What every microvm error carries, so a caller can tell which service and target failed. */
export function errorDetails(serviceId: string): { serviceId: string; target: string } {
  return { serviceId, target: "microvm" };
}

/** A VMM (or local) failure as the one error class, keeping its kind: the VMM's codes are ours. */
export function vmctlError(err: unknown, context: string, serviceId: string): VmctlError {
  if (err instanceof VmctlError) return err;
  if (err instanceof VmmError) {
    const code: ErrorCode = isErrorCode(err.code) ? err.code : "INTERNAL";
    return new VmctlError(code, `${context}: ${err.message}`, { cause: err, details: errorDetails(serviceId) });
  }
  return VmctlError.from(err, context);
}
