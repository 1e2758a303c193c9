// Checks every request field shares, whatever the method: service references, label
// values, the size and depth of JSON a client hands in. Each failure is a
// ValidationError naming the field, with at most a short excerpt of what was sent.
import { echo, LIMITS, NAME_PATTERN } from "../contract/limits.js";
import { ValidationError, VmctlError } from "../errors.js";

/** A service reference (id or name): every id and every name matches NAME_PATTERN. */
export function checkRef(ref: unknown, field: string): string {
  if (typeof ref !== "string" || ref === "") throw new ValidationError(field, "is required: a service id or name");
  if (!NAME_PATTERN.test(ref)) throw new ValidationError(field, `${echo(ref)} is not a service id or name`);
  return ref;
}

/** True for C0/C1 control characters (NUL, newline, escape...): never wanted in a label or a header-like value. */
export function hasControlCharacter(text: string): boolean {
  return /[\u0000-\u001f\u007f-\u009f]/.test(text);
}

/** UTF-8 length, without allocating a buffer. */
export function utf8Bytes(text: string): number {
  return Buffer.byteLength(text, "utf8");
}

/** Keys that would change an object's prototype when assigned, so they could vanish or poison it. */
const FORBIDDEN_KEYS = new Set(["__proto__"]);

/**
 * Bounds untrusted JSON before anyone walks it recursively: nesting ≤ LIMITS.specDepth,
 * size ≤ `maxBytes`, no `__proto__` keys. Iterative, so no input can exhaust the stack.
 */
export function checkJsonShape(value: unknown, field: string, maxBytes: number = LIMITS.specBytes): void {
  const stack: { value: unknown; path: string; depth: number }[] = [{ value, path: field, depth: 0 }];
  let bytes = 0;
  while (stack.length > 0) {
    const { value: v, path, depth } = stack.pop() as { value: unknown; path: string; depth: number };
    if (typeof v === "string") bytes += utf8Bytes(v) + 2;
    else if (typeof v === "number") {
      if (!Number.isFinite(v)) throw new ValidationError(path, "must be a finite number");
      bytes += 8;
    } else if (v === null || typeof v === "boolean") bytes += 4;
    else if (Array.isArray(v)) {
      if (depth >= LIMITS.specDepth) throw new ValidationError(path, `is nested too deeply (more than ${LIMITS.specDepth} levels)`);
      bytes += 2;
      v.forEach((item, i) => stack.push({ value: item, path: `${path}[${i}]`, depth: depth + 1 }));
    } else if (typeof v === "object") {
      if (depth >= LIMITS.specDepth) throw new ValidationError(path, `is nested too deeply (more than ${LIMITS.specDepth} levels)`);
      bytes += 2;
      for (const key of Object.keys(v)) {
        const at = `${path}.${key.length > LIMITS.echoLength ? echo(key) : key}`;
        if (FORBIDDEN_KEYS.has(key)) throw new ValidationError(at, "is not allowed as a key");
        bytes += utf8Bytes(key) + 3;
        stack.push({ value: (v as Record<string, unknown>)[key], path: at, depth: depth + 1 });
      }
    } else {
      throw new ValidationError(path, `must be JSON (got ${typeof v})`);
    }
    if (bytes > maxBytes) throw new ValidationError(field, `is too large (more than ${maxBytes / 1024} KiB as JSON)`);
  }
}

/** A list of strings within the arg limits (command lines, exec args). */
export function checkArgs(args: unknown, field: string, options: { nonEmpty?: boolean } = {}): string[] {
  if (!Array.isArray(args)) throw new ValidationError(field, "must be a list of strings");
  if (options.nonEmpty && args.length === 0) throw new ValidationError(field, "must not be empty");
  if (args.length > LIMITS.argCount) throw new ValidationError(field, `has ${args.length} entries; at most ${LIMITS.argCount}`);
  let bytes = 0;
  args.forEach((arg, i) => {
    if (typeof arg !== "string") throw new ValidationError(`${field}[${i}]`, "must be a string");
    if (arg.includes("\0")) throw new ValidationError(`${field}[${i}]`, "must not contain NUL");
    bytes += utf8Bytes(arg);
  });
  if (bytes > LIMITS.argsTotalBytes) throw new ValidationError(field, `is too large (more than ${LIMITS.argsTotalBytes / 1024} KiB)`);
  return [...(args as string[])];
}

/** StopService timeout_ms: 0 ..= LIMITS.stopTimeoutMs; `default` when not given. */
export function checkStopTimeout(timeoutMs: number | undefined, fallback: number): number {
  if (timeoutMs === undefined) return fallback;
  if (!Number.isInteger(timeoutMs) || timeoutMs < 0 || timeoutMs > LIMITS.stopTimeoutMs) {
    throw new VmctlError("INVALID_ARGUMENT", `timeoutMs: must be an integer from 0 to ${LIMITS.stopTimeoutMs} (ms)`, { details: { field: "timeoutMs" } });
  }
  return timeoutMs;
}

