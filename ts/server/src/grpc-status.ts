// The one place where errors cross the gRPC edge on the server: VmctlError.code (named
// after gRPC statuses) → status, with the details as trailing metadata so the client can
// rebuild the same VmctlError. Anything else is INTERNAL.
import * as grpc from "@grpc/grpc-js";
import { VmctlError } from "@vmctl/core";

/** Trailing metadata keys carrying VmctlError.details. */
export const DETAIL_KEYS = { field: "vmctl-field", serviceId: "vmctl-service-id", target: "vmctl-target" } as const;

export function toServiceError(err: unknown): Partial<grpc.ServiceError> & { code: grpc.status } {
  const e = VmctlError.from(err);
  const code = grpc.status[e.code] ?? grpc.status.INTERNAL;
  const metadata = new grpc.Metadata();
  for (const [key, header] of Object.entries(DETAIL_KEYS)) {
    const value = e.details[key as keyof typeof DETAIL_KEYS];
    if (typeof value === "string" && value !== "") metadata.set(header, value);
  }
  return { code, details: e.message, metadata };
}
