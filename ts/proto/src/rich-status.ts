// gRPC's rich error model on the wire (https://google.aip.dev/193): a google.rpc.Status in
// the binary trailer `grpc-status-details-bin`, carrying a google.rpc.ErrorInfo and, for
// a bad request, a google.rpc.BadRequest. Binary trailers take any bytes, so text the
// client sent (a service id "é", a target "oci\0") travels intact, where an ASCII
// trailer would make grpc-js throw. Both ends of vmctl use this module; stock clients
// (grpcio-status, grpc-go's status.Details) read the same bytes.
import { google } from "./gen/protos.js";

/** The trailer gRPC implementations agree on for a serialized google.rpc.Status. */
export const STATUS_DETAILS_KEY = "grpc-status-details-bin";

const TYPE_PREFIX = "type.googleapis.com/";
const ERROR_INFO = `${TYPE_PREFIX}google.rpc.ErrorInfo`;
const BAD_REQUEST = `${TYPE_PREFIX}google.rpc.BadRequest`;

export interface FieldViolation {
  readonly field: string;
  readonly description: string;
}

/** What a google.rpc.Status carries, as plain data. */
export interface RichStatus {
  /** The gRPC status code (as a number). */
  readonly code: number;
  readonly message: string;
  /** ErrorInfo: a machine-readable reason, the domain that defines it, and its metadata. */
  readonly errorInfo?: { readonly reason: string; readonly domain: string; readonly metadata: Readonly<Record<string, string>> };
  /** BadRequest: which fields of the request were wrong. */
  readonly fieldViolations?: readonly FieldViolation[];
}

export function encodeRichStatus(status: RichStatus): Uint8Array {
  const details: google.protobuf.IAny[] = [];
  if (status.errorInfo !== undefined) {
    details.push({ type_url: ERROR_INFO, value: google.rpc.ErrorInfo.encode({ ...status.errorInfo, metadata: { ...status.errorInfo.metadata } }).finish() });
  }
  if (status.fieldViolations !== undefined && status.fieldViolations.length > 0) {
    details.push({ type_url: BAD_REQUEST, value: google.rpc.BadRequest.encode({ fieldViolations: status.fieldViolations.map((v) => ({ ...v })) }).finish() });
  }
  return google.rpc.Status.encode({ code: status.code, message: status.message, details }).finish();
}

/** The rich status in `bytes`, or undefined when they are not a google.rpc.Status. Unknown detail types are ignored. */
export function decodeRichStatus(bytes: Uint8Array): RichStatus | undefined {
  let status: google.rpc.Status;
  try {
    status = google.rpc.Status.decode(bytes);
  } catch {
    return undefined;
  }
  let errorInfo: RichStatus["errorInfo"];
  let fieldViolations: FieldViolation[] | undefined;
  for (const any of status.details) {
    try {
      if (any.type_url === ERROR_INFO) {
        const info = google.rpc.ErrorInfo.decode(any.value ?? new Uint8Array());
        errorInfo = { reason: info.reason, domain: info.domain, metadata: { ...info.metadata } };
      } else if (any.type_url === BAD_REQUEST) {
        fieldViolations = google.rpc.BadRequest.decode(any.value ?? new Uint8Array()).fieldViolations.map((v) => ({ field: v.field ?? "", description: v.description ?? "" }));
      }
    } catch {
      // a detail we cannot read is a detail we do without
    }
  }
  return {
    code: status.code,
    message: status.message,
    ...(errorInfo === undefined ? {} : { errorInfo }),
    ...(fieldViolations === undefined ? {} : { fieldViolations }),
  };
}
