// One error class for the whole orchestrator. Kinds follow gRPC status names so the
// server maps them at its edge without a table of special cases, and the client maps
// them back.

export type ErrorCode =
  | "INVALID_ARGUMENT"
  | "NOT_FOUND"
  | "ALREADY_EXISTS"
  | "FAILED_PRECONDITION"
  | "RESOURCE_EXHAUSTED"
  | "UNAVAILABLE"
  | "DEADLINE_EXCEEDED"
  | "UNIMPLEMENTED"
  | "CANCELLED"
  | "PERMISSION_DENIED"
  | "UNAUTHENTICATED"
  | "DATA_LOSS"
  | "INTERNAL";

export interface ErrorDetails {
  /** For INVALID_ARGUMENT: the path of the offending field, e.g. "spec.memoryMib". */
  readonly field?: string;
  /** The service concerned, when there is one. */
  readonly serviceId?: string;
  /** The target concerned, when there is one. */
  readonly target?: string;
}

const ERRNO_CODES: Readonly<Record<string, ErrorCode>> = {
  ENOENT: "NOT_FOUND",
  EEXIST: "ALREADY_EXISTS",
  EACCES: "PERMISSION_DENIED",
  EPERM: "PERMISSION_DENIED",
  ECONNREFUSED: "UNAVAILABLE",
  ECONNRESET: "UNAVAILABLE",
  EPIPE: "UNAVAILABLE",
  ETIMEDOUT: "DEADLINE_EXCEEDED",
  ENOSPC: "RESOURCE_EXHAUSTED",
  EMFILE: "RESOURCE_EXHAUSTED",
};

const ERROR_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  "INVALID_ARGUMENT",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "FAILED_PRECONDITION",
  "RESOURCE_EXHAUSTED",
  "UNAVAILABLE",
  "DEADLINE_EXCEEDED",
  "UNIMPLEMENTED",
  "CANCELLED",
  "PERMISSION_DENIED",
  "UNAUTHENTICATED",
  "DATA_LOSS",
  "INTERNAL",
]);

/** True when `value` names one of the error kinds (e.g. a gRPC status name that maps 1:1). */
export function isErrorCode(value: string): value is ErrorCode {
  return (ERROR_CODES as ReadonlySet<string>).has(value);
}

export class VmctlError extends Error {
  override readonly name: string = "VmctlError";
  readonly details: ErrorDetails;

  constructor(
    readonly code: ErrorCode,
    message: string,
    options: { cause?: unknown; details?: ErrorDetails } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.details = options.details ?? {};
  }

  /** Any thrown value as a VmctlError; Node errno codes become their kind here, at the edge. */
  static from(err: unknown, context?: string): VmctlError {
    if (err instanceof VmctlError) return err;
    // A VmctlError from another copy of this module (a plugin's bundle, dist vs src):
    // recognised by shape so its code survives.
    const foreign = err as { name?: unknown; code?: unknown; message?: unknown; details?: unknown } | null;
    if (
      err instanceof Error &&
      (foreign?.name === "VmctlError" || foreign?.name === "ValidationError") &&
      typeof foreign.code === "string" &&
      ERROR_CODES.has(foreign.code as ErrorCode)
    ) {
      const details = typeof foreign.details === "object" && foreign.details !== null ? (foreign.details as ErrorDetails) : {};
      return new VmctlError(foreign.code as ErrorCode, context ? `${context}: ${err.message}` : err.message, { cause: err, details });
    }
    const errno = (err as NodeJS.ErrnoException | undefined)?.code;
    const message = err instanceof Error ? err.message : String(err);
    const code = (errno && ERRNO_CODES[errno]) || "INTERNAL";
    return new VmctlError(code, context ? `${context}: ${message}` : message, { cause: err });
  }
}

/** A spec that does not validate: names the field and what is wrong with it. */
export class ValidationError extends VmctlError {
  override readonly name = "ValidationError";

  /** `field` is a path ("spec.memoryMib", "args[1]"), or "" for the value as a whole. */
  constructor(
    readonly field: string,
    readonly problem: string,
  ) {
    super("INVALID_ARGUMENT", field === "" ? problem : `${field}: ${problem}`, { details: { field } });
  }

  /** The same problem, with the field path nested under `prefix` (e.g. "spec"). */
  within(prefix: string): ValidationError {
    const field = this.field === "" ? prefix : this.field.startsWith("[") ? `${prefix}${this.field}` : `${prefix}.${this.field}`;
    return new ValidationError(field, this.problem);
  }
}
