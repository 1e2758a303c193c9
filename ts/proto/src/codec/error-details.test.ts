import test from "ava";
import { ValidationError, VmctlError, type ErrorDetails } from "@vmctl/core/contract";
import { decodeRichStatus, encodeRichStatus } from "../rich-status.js";
import { boundedText, decodeErrorDetails, encodeErrorDetails } from "./error-details.js";

const INVALID_ARGUMENT = 3;
const NOT_FOUND = 5;

test("the details a server encodes are the details the client decodes", (t) => {
  const cases: [number, VmctlError][] = [
    [INVALID_ARGUMENT, new ValidationError("spec.rootfs", "is required")],
    [NOT_FOUND, new VmctlError("NOT_FOUND", "no", { details: { serviceId: "é", target: "oci\0" } })],
    [NOT_FOUND, new VmctlError("NOT_FOUND", "no")],
  ];
  for (const [status, err] of cases) t.deepEqual(decodeErrorDetails(encodeErrorDetails(status, err.message, err)), err.details);
});

test("an INVALID_ARGUMENT naming a field also carries a BadRequest; detail values are bounded", (t) => {
  const invalid = decodeRichStatus(encodeErrorDetails(INVALID_ARGUMENT, "spec.a: bad", new ValidationError("spec.a", "bad")));
  t.deepEqual(invalid, {
    code: INVALID_ARGUMENT,
    message: "spec.a: bad",
    errorInfo: { reason: "INVALID_ARGUMENT", domain: "vmctl.io", metadata: { field: "spec.a" } },
    fieldViolations: [{ field: "spec.a", description: "spec.a: bad" }],
  });
  const long = decodeRichStatus(encodeErrorDetails(NOT_FOUND, "m", new VmctlError("NOT_FOUND", "m", { details: { serviceId: "x".repeat(500), target: "\uD800" } }), { maxDetailChars: 10 }));
  t.is(long?.fieldViolations, undefined);
  t.deepEqual(long?.errorInfo?.metadata, { service_id: `${"x".repeat(9)}…`, target: "\uFFFD" });
  t.is(boundedText("\u{1F600}".repeat(10), 5), `${"\u{1F600}".repeat(4)}…`);
});

test("another domain's ErrorInfo is ignored, yet its BadRequest still names the field; garbage is no details", (t) => {
  const foreign = encodeRichStatus({
    code: INVALID_ARGUMENT,
    message: "m",
    errorInfo: { reason: "X", domain: "example.com", metadata: { field: "nope", service_id: "nope" } },
    fieldViolations: [{ field: "name", description: "m" }],
  });
  t.deepEqual(decodeErrorDetails(foreign), { field: "name" } satisfies ErrorDetails);
  t.deepEqual(decodeErrorDetails(new Uint8Array([0xff, 0xff, 0xff])), {});
});
