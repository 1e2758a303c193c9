// Errors of the native image engine, turned into VmctlErrors once, here. The engine
// reports a kind as a `code` property ("NOT_FOUND", "DATA_LOSS"...) or, from code paths
// that can only throw a plain Error, as a "CODE: " prefix of the message; both are read.
import { isErrorCode, VmctlError, type ErrorCode } from "../errors.js";
import { IMAGE_FIELD } from "./reference.js";

const PREFIX = /^([A-Z][A-Z_]*):\s*([\s\S]*)$/;

/**
 * `err` from the native engine as a VmctlError whose message starts with `action`
 * (`pulling node:20`), then the kind, then the engine's words:
 * `pulling node:20: NOT_FOUND: manifest unknown`. A kind the engine did not give comes
 * from the Node errno (ENOSPC → RESOURCE_EXHAUSTED), else INTERNAL. An INVALID_ARGUMENT
 * names `field` in its details: the request field the caller took the reference from.
 */
export function nativeImageError(err: unknown, action: string, field: string = IMAGE_FIELD): VmctlError {
  if (err instanceof VmctlError) {
    const invalid = err.code === "INVALID_ARGUMENT";
    const details = invalid ? { ...err.details, field } : err.details;
    return new VmctlError(err.code, `${invalid ? `${field}: ` : ""}${action}: ${err.message}`, { cause: err, details });
  }
  let text = err instanceof Error ? err.message : String(err);
  const property = (err as { code?: unknown } | null)?.code;
  let code: ErrorCode | undefined = typeof property === "string" && isErrorCode(property) ? property : undefined;
  const prefixed = PREFIX.exec(text);
  if (prefixed !== null && isErrorCode(prefixed[1] as string) && (code === undefined || code === prefixed[1])) {
    code = prefixed[1] as ErrorCode;
    text = prefixed[2] as string;
  }
  code ??= VmctlError.from(err).code;
  // A bad reference or archive is the user's field to fix: named first, as ValidationError does.
  const message = code === "INVALID_ARGUMENT" ? `${field}: ${action}: ${text}` : `${action}: ${code}: ${text}`;
  return new VmctlError(code, message, {
    cause: err,
    // A bad reference, a bad archive: the user's image argument is what to fix.
    details: code === "INVALID_ARGUMENT" ? { field } : {},
  });
}
