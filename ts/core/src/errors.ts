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

/**
 * Brand of the error classes, shared through the global symbol registry: each class's
 * prototype carries its brand name, so `instanceof` knows an instance made by another
 * copy of this module (a bundle of the CLI, a plugin's bundle, dist beside src), which
 * the prototype chain alone cannot.
 */
const BRAND = Symbol.for("vmctl.error.brand");

/** True when `value` is an instance of `cls`, of this copy or (by brand) of another. */
function isBranded(cls: { readonly prototype: object }, value: unknown): boolean {
  if (Function.prototype[Symbol.hasInstance].call(cls, value)) return true;
  if (typeof value !== "object" || value === null || !Object.hasOwn(cls.prototype, BRAND)) return false;
  // A subclass with no brand of its own is matched by its prototype chain only (above).
  const brand = (cls.prototype as { [BRAND]?: unknown })[BRAND];
  for (let proto = Object.getPrototypeOf(value) as object | null; proto !== null; proto = Object.getPrototypeOf(proto) as object | null) {
    if (Object.hasOwn(proto, BRAND) && (proto as { [BRAND]?: unknown })[BRAND] === brand) return true;
  }
  return false;
}

/** True when `value` names one of the error kinds (e.g. a gRPC status name that maps 1:1). */
export function isErrorCode(value: string): value is ErrorCode {
  return (ERROR_CODES as ReadonlySet<string>).has(value);
}

export class VmctlError extends Error {
  static {
    Object.defineProperty(this.prototype, BRAND, { value: "vmctl.VmctlError" });
  }

  /** Instances of this class from any copy of this module (see BRAND); subclasses inherit this. */
  static override [Symbol.hasInstance]<T>(this: abstract new (...args: never[]) => T, value: unknown): value is T {
    return isBranded(this, value);
  }

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
    if (Function.prototype[Symbol.hasInstance].call(VmctlError, err)) return err as VmctlError;
    // A VmctlError from another copy of this module (a plugin's bundle, dist vs src):
    // recognised by brand, or by shape (a copy older than the brand), and made one of
    // ours with its code, details and the context.
    const foreign = err as { name?: unknown; code?: unknown; message?: unknown; details?: unknown } | null;
    if (
      foreign !== null &&
      err instanceof Error &&
      (err instanceof VmctlError || foreign.name === "VmctlError" || foreign.name === "ValidationError") &&
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
  static {
    Object.defineProperty(this.prototype, BRAND, { value: "vmctl.ValidationError" });
  }

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
