// The microvm target's failures as the one error class (VmctlError), named for the service.
import { VmctlError } from "@vmctl/core/contract";

/** What every microvm error carries, so a caller can tell which service and target failed. */
export function errorDetails(serviceId: string): { serviceId: string; target: string } {
  return { serviceId, target: "microvm" };
}

/**
 * A VMM (or local) failure as the one error class, keeping its kind: the VMM's codes are
 * ours. One that does not name its service yet (the VMM client's, a local one) gets
 * `context` and the service, keeping its field (vmm-connection.ts has made it the spec's);
 * one that does is the target's own, already said in full.
 */
export function vmctlError(err: unknown, context: string, serviceId: string): VmctlError {
  if (err instanceof VmctlError && err.details.serviceId !== undefined) return err;
  const e = VmctlError.from(err);
  return new VmctlError(e.code, `${context}: ${e.message}`, { cause: err, details: { ...e.details, ...errorDetails(serviceId) } });
}
