// The one place where errors cross the gRPC edge on the server: VmctlError.code (named
// after gRPC statuses) → status, and VmctlError.details in gRPC's rich error model (a
// google.rpc.Status in the binary `grpc-status-details-bin` trailer, holding an ErrorInfo
// and, for a bad request, a BadRequest), so any text a client sent survives the trip and
// the client rebuilds the same VmctlError. Anything else is INTERNAL.
//
// Details once travelled as ASCII trailers; grpc-js throws on a non-ASCII value there, and
// one `vmctl inspect é` took the daemon down. Nothing here may throw: every string is
// made well-formed and cut to size before it reaches grpc-js.
import * as grpc from "@grpc/grpc-js";
import { VmctlError, type ErrorDetails } from "@vmctl/core";
import { encodeRichStatus, STATUS_DETAILS_KEY, type RichStatus } from "@vmctl/proto";

/** ErrorInfo.domain of every vmctl error. */
export const ERROR_DOMAIN = "vmctl.io";
/**
 * Longest status message, in characters. Messages quote client values through echo()
 * already; this is the last line of defence, so that no message (a trailer) grows with
 * what a client sent.
 */
export const MAX_MESSAGE_CHARS = 300;
/** Longest ErrorInfo metadata value (a field path, a service id, a target), in characters. */
export const MAX_DETAIL_CHARS = 128;

/** ErrorInfo.metadata keys for VmctlError.details (lowerCamel there, snake_case on the wire as AIP-193 asks). */
export const DETAIL_METADATA_KEYS = { field: "field", serviceId: "service_id", target: "target" } as const satisfies Record<keyof ErrorDetails, string>;

export interface StatusObject {
  readonly code: grpc.status;
  readonly details: string;
  readonly metadata?: grpc.Metadata;
}

// A lone surrogate makes encodeURI (grpc-js's encoding of grpc-message) throw, and
// protobufjs would write it as invalid UTF-8.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** `text` as well-formed Unicode, at most `max` characters (code points), cut with "…". */
export function boundedText(text: string, max: number): string {
  const whole = text.replace(LONE_SURROGATE, "\uFFFD");
  if (whole.length <= max) return whole;
  const chars = Array.from(whole);
  return chars.length <= max ? whole : `${chars.slice(0, max - 1).join("")}…`;
}

function richStatus(code: grpc.status, message: string, e: VmctlError): RichStatus {
  const metadata: Record<string, string> = {};
  for (const [key, wireKey] of Object.entries(DETAIL_METADATA_KEYS)) {
    const value = e.details[key as keyof ErrorDetails];
    if (typeof value === "string" && value !== "") metadata[wireKey] = boundedText(value, MAX_DETAIL_CHARS);
  }
  const field = metadata.field;
  return {
    code,
    message,
    errorInfo: { reason: e.code, domain: ERROR_DOMAIN, metadata },
    ...(code === grpc.status.INVALID_ARGUMENT && field !== undefined ? { fieldViolations: [{ field, description: message }] } : {}),
  };
}

export function toServiceError(err: unknown): StatusObject {
  const e = VmctlError.from(err);
  const code = grpc.status[e.code] ?? grpc.status.INTERNAL;
  const message = boundedText(e.message, MAX_MESSAGE_CHARS);
  try {
    const metadata = new grpc.Metadata();
    metadata.set(STATUS_DETAILS_KEY, Buffer.from(encodeRichStatus(richStatus(code, message, e))));
    return { code, details: message, metadata };
  } catch {
    return { code, details: message };
  }
}

/**
 * The status to send when even building or sending the real one failed: the code and an
 * ASCII-only message (non-ASCII escaped as \uXXXX), no metadata. It cannot fail.
 */
export function plainStatus(code: grpc.status, message: string): StatusObject {
  // Without the u flag the pattern matches UTF-16 units, so each half of a pair is escaped.
  const ascii = boundedText(message, MAX_MESSAGE_CHARS).replace(/[^\x20-\x7e]/g, (unit) => `\\u${unit.charCodeAt(0).toString(16).padStart(4, "0")}`);
  return { code, details: ascii };
}
