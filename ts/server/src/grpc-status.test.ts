import * as grpc from "@grpc/grpc-js";
import test from "ava";
import { LIMITS, ValidationError, VmctlError, type ErrorCode } from "@vmctl/core";
import { decodeRichStatus, STATUS_DETAILS_KEY, type RichStatus } from "@vmctl/proto";
import { boundedText, MAX_DETAIL_CHARS, MAX_MESSAGE_CHARS, plainStatus, toServiceError } from "./grpc-status.js";

function rich(status: ReturnType<typeof toServiceError>): RichStatus {
  const raw = status.metadata?.get(STATUS_DETAILS_KEY)[0];
  if (!(raw instanceof Buffer)) throw new Error("no grpc-status-details-bin");
  const decoded = decodeRichStatus(raw);
  if (decoded === undefined) throw new Error("grpc-status-details-bin is not a google.rpc.Status");
  return decoded;
}

test("VmctlError codes become the gRPC status of the same name", (t) => {
  for (const code of ["NOT_FOUND", "ALREADY_EXISTS", "FAILED_PRECONDITION", "UNAVAILABLE", "RESOURCE_EXHAUSTED", "CANCELLED"] as const) {
    t.is(toServiceError(new VmctlError(code, "x")).code, grpc.status[code]);
  }
});

test("the image store's failures keep their own status: the registry's refusals, its absence, a corrupt blob, a full disk", (t) => {
  // UNAUTHENTICATED and DATA_LOSS are not (yet) ErrorCodes of @vmctl/core: the mapping
  // goes by name, so they need nothing here once the core has them.
  for (const code of ["UNAUTHENTICATED", "PERMISSION_DENIED", "UNAVAILABLE", "DATA_LOSS", "RESOURCE_EXHAUSTED"] as const) {
    const status = toServiceError(new VmctlError(code as ErrorCode, "registry says no"));
    t.is(status.code, grpc.status[code], code);
    t.is(rich(status).errorInfo?.reason, code);
  }
});

test("details ride in google.rpc.Status: ErrorInfo (domain vmctl.io) and, for a bad field, BadRequest", (t) => {
  const invalid = toServiceError(new ValidationError("spec.rootfs", "is required"));
  t.is(invalid.code, grpc.status.INVALID_ARGUMENT);
  t.is(invalid.details, "spec.rootfs: is required");
  t.deepEqual(rich(invalid), {
    code: grpc.status.INVALID_ARGUMENT,
    message: "spec.rootfs: is required",
    errorInfo: { reason: "INVALID_ARGUMENT", domain: "vmctl.io", metadata: { field: "spec.rootfs" } },
    fieldViolations: [{ field: "spec.rootfs", description: "spec.rootfs: is required" }],
  });
  const missing = toServiceError(new VmctlError("NOT_FOUND", 'no service "a"', { details: { serviceId: "a", target: "oci" } }));
  t.deepEqual(rich(missing).errorInfo?.metadata, { service_id: "a", target: "oci" });
  t.is(rich(missing).fieldViolations, undefined);
});

test("any Unicode in the details survives (ASCII trailers made grpc-js throw and the daemon die)", (t) => {
  for (const text of ["é", "ключ", "oci\0", "a\nb", "\u{1F600}", "\u0007"]) {
    const status = toServiceError(new VmctlError("NOT_FOUND", `no service ${JSON.stringify(text)}`, { details: { serviceId: text, field: text, target: text } }));
    t.deepEqual(rich(status).errorInfo?.metadata, { field: text, service_id: text, target: text }, JSON.stringify(text));
    // grpc-js sends the message through encodeURI: it must not throw on it.
    t.notThrows(() => encodeURI(status.details));
  }
});

test("messages and detail values are cut; a lone surrogate (encodeURI throws on it) is replaced", (t) => {
  const huge = "x".repeat(1_000_000);
  const status = toServiceError(new VmctlError("NOT_FOUND", `no service ${huge}`, { details: { serviceId: huge } }));
  t.is([...status.details].length, MAX_MESSAGE_CHARS);
  t.true(status.details.endsWith("…"));
  t.is([...(rich(status).errorInfo?.metadata.service_id ?? "")].length, MAX_DETAIL_CHARS);
  t.true(MAX_MESSAGE_CHARS > 4 * LIMITS.echoLength, "room for a message quoting a few echoed values");

  const lone = toServiceError(new VmctlError("NOT_FOUND", "bad \uD800 here", { details: { serviceId: "\uDC00" } }));
  t.is(lone.details, "bad \uFFFD here");
  t.notThrows(() => encodeURI(lone.details));
  t.is(rich(lone).errorInfo?.metadata.service_id, "\uFFFD");
  // cutting never splits a surrogate pair
  t.is(boundedText("\u{1F600}".repeat(10), 5), `${"\u{1F600}".repeat(4)}…`);
});

test("the plain fallback status is ASCII with no metadata", (t) => {
  const plain = plainStatus(grpc.status.NOT_FOUND, "no service \"é\u{1F600}\"");
  t.deepEqual(plain, { code: grpc.status.NOT_FOUND, details: 'no service "\\u00e9\\ud83d\\ude00"' });
});

test("anything else is INTERNAL, and errno codes are translated at the edge", (t) => {
  t.is(toServiceError(new TypeError("boom")).code, grpc.status.INTERNAL);
  t.is(toServiceError("a string").code, grpc.status.INTERNAL);
  t.is(toServiceError(Object.assign(new Error("no"), { code: "ENOSPC" })).code, grpc.status.RESOURCE_EXHAUSTED);
});
