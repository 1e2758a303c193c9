import * as grpc from "@grpc/grpc-js";
import test from "ava";
import { ValidationError, VmctlError } from "@vmctl/core";
import { toServiceError } from "./grpc-status.js";

test("VmctlError codes become the gRPC status of the same name, details ride in metadata", (t) => {
  const invalid = toServiceError(new ValidationError("spec.rootfs", "is required"));
  t.is(invalid.code, grpc.status.INVALID_ARGUMENT);
  t.is(invalid.details, "spec.rootfs: is required");
  t.deepEqual(invalid.metadata?.get("vmctl-field"), ["spec.rootfs"]);
  for (const code of ["NOT_FOUND", "ALREADY_EXISTS", "FAILED_PRECONDITION", "UNAVAILABLE", "RESOURCE_EXHAUSTED", "CANCELLED"] as const) {
    t.is(toServiceError(new VmctlError(code, "x")).code, grpc.status[code]);
  }
  const missing = toServiceError(new VmctlError("NOT_FOUND", 'no service "a"', { details: { serviceId: "a" } }));
  t.deepEqual(missing.metadata?.get("vmctl-service-id"), ["a"]);
});

test("anything else is INTERNAL, and errno codes are translated at the edge", (t) => {
  t.is(toServiceError(new TypeError("boom")).code, grpc.status.INTERNAL);
  t.is(toServiceError("a string").code, grpc.status.INTERNAL);
  t.is(toServiceError(Object.assign(new Error("no"), { code: "ENOSPC" })).code, grpc.status.RESOURCE_EXHAUSTED);
});
