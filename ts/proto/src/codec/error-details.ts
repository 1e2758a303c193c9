// VmctlError's code and details ↔ gRPC's rich error model (rich-status.ts): an ErrorInfo
// of domain vmctl.io whose reason is the VmctlError code and whose metadata holds the
// details (snake_case keys, as AIP-193 asks) and, for a bad field, a BadRequest. The
// server encodes, the client decodes; both read the key table below.
import type { ErrorCode, ErrorDetails } from "@vmctl/core/contract";
import { decodeRichStatus, encodeRichStatus, type RichStatus } from "../rich-status.js";

/** ErrorInfo.domain of every vmctl error. */
export const ERROR_DOMAIN = "vmctl.io";

/** ErrorInfo.metadata keys for VmctlError.details (lowerCamel there, snake_case on the wire). */
export const DETAIL_METADATA_KEYS = { field: "field", serviceId: "service_id", target: "target" } as const satisfies Record<keyof ErrorDetails, string>;

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

/** What of a VmctlError goes into its status's details (a VmctlError is one). */
export interface ErrorDetailsSource {
  readonly code: ErrorCode;
  readonly details: ErrorDetails;
}

/**
 * The google.rpc.Status (serialized, for `grpc-status-details-bin`) of an error sent with
 * gRPC status `status` and `message`: ErrorInfo always, a BadRequest too when it is an
 * INVALID_ARGUMENT naming a field. Detail values are made well-formed and cut to
 * `maxDetailChars`, so none of them grows with what a client sent.
 */
export function encodeErrorDetails(status: number, message: string, error: ErrorDetailsSource, options: { maxDetailChars?: number } = {}): Uint8Array {
  const max = options.maxDetailChars ?? Number.MAX_SAFE_INTEGER;
  const metadata: Record<string, string> = {};
  for (const [key, wireKey] of Object.entries(DETAIL_METADATA_KEYS)) {
    const value = error.details[key as keyof ErrorDetails];
    if (typeof value === "string" && value !== "") metadata[wireKey] = boundedText(value, max);
  }
  const field = metadata.field;
  const rich: RichStatus = {
    code: status,
    message,
    errorInfo: { reason: error.code, domain: ERROR_DOMAIN, metadata },
    ...(error.code === "INVALID_ARGUMENT" && field !== undefined ? { fieldViolations: [{ field, description: message }] } : {}),
  };
  return encodeRichStatus(rich);
}

/**
 * VmctlError.details from a serialized google.rpc.Status: the ErrorInfo's metadata when
 * it is vmctl's; else (another server's, say) a BadRequest still says which field. Empty
 * when there are none, or the bytes are not a Status.
 */
export function decodeErrorDetails(bytes: Uint8Array): ErrorDetails {
  const rich = decodeRichStatus(bytes);
  const details: { -readonly [K in keyof ErrorDetails]: ErrorDetails[K] } = {};
  if (rich?.errorInfo?.domain === ERROR_DOMAIN) {
    for (const [key, wireKey] of Object.entries(DETAIL_METADATA_KEYS)) {
      const value = rich.errorInfo.metadata[wireKey];
      if (typeof value === "string" && value !== "") details[key as keyof ErrorDetails] = value;
    }
  }
  const violation = rich?.fieldViolations?.[0];
  if (details.field === undefined && violation !== undefined && violation.field !== "") details.field = violation.field;
  return details;
}
