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
import { VmctlError } from "@vmctl/core";
import { boundedText, encodeErrorDetails, STATUS_DETAILS_KEY } from "@vmctl/proto";

// The encoding and its key table are @vmctl/proto's (the client decodes with the same module).
export { boundedText, DETAIL_METADATA_KEYS, ERROR_DOMAIN } from "@vmctl/proto";

/**
 * Longest status message, in characters. Messages quote client values through echo()
 * already; this is the last line of defence, so that no message (a trailer) grows with
 * what a client sent.
 */
export const MAX_MESSAGE_CHARS = 300;
/** Longest ErrorInfo metadata value (a field path, a service id, a target), in characters. */
export const MAX_DETAIL_CHARS = 128;

export interface StatusObject {
  readonly code: grpc.status;
  readonly details: string;
  readonly metadata?: grpc.Metadata;
}

export function toServiceError(err: unknown): StatusObject {
  const e = VmctlError.from(err);
  const code = grpc.status[e.code] ?? grpc.status.INTERNAL;
  const message = boundedText(e.message, MAX_MESSAGE_CHARS);
  try {
    const metadata = new grpc.Metadata();
    metadata.set(STATUS_DETAILS_KEY, Buffer.from(encodeErrorDetails(code, message, e, { maxDetailChars: MAX_DETAIL_CHARS })));
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
