// Checks for the fields of an untrusted spec (or target options), shared by the targets so
// every one of them words the same problem the same way. Each takes the raw value and the
// field's path ("mounts[0].source") and returns the value typed, or throws
// ValidationError(field, problem) naming that path.
import { statSync, type Stats } from "node:fs";
import { isAbsolute, posix } from "node:path";
import { entriesByKey, ValidationError } from "../contract/index.js";

/** A check of one string-valued field: a target passes a stricter one where its format needs it. */
export type StringCheck = (value: unknown, field: string) => string;

/** A host path bind-mounted into a container (the contract's type; `mounts()` checks one). */
export type { BindMount } from "../contract/types.js";
import type { BindMount } from "../contract/types.js";

const ENV_IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
const MOUNT_FIELDS = ["source", "destination", "readOnly"];

/** A plain object (not null, not an array). */
export function record(value: unknown, field: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ValidationError(field, "must be an object");
  }
  return value as Record<string, unknown>;
}

/** Refuses a key of `obj` that is not in `known`, so a typo never silently means "default". */
export function refuseUnknown(obj: Record<string, unknown>, known: readonly string[], prefix = "", problem = "unknown field"): void {
  for (const key of Object.keys(obj)) {
    if (!known.includes(key)) throw new ValidationError(prefix + key, problem);
  }
}

/** A string without NUL (which no path, argument or environment value can hold). */
export function str(value: unknown, field: string): string {
  if (typeof value !== "string") throw new ValidationError(field, "must be a string");
  if (value.includes("\0")) throw new ValidationError(field, "must not contain NUL");
  return value;
}

export function bool(value: unknown, field: string): boolean {
  if (typeof value !== "boolean") throw new ValidationError(field, "must be a boolean");
  return value;
}

/** An integer from 1 up (a safe integer). */
export function positiveInt(value: unknown, field: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value <= 0) {
    throw new ValidationError(field, "must be a positive integer");
  }
  return value;
}

/** An integer from `min` to `max`, both included. */
export function intIn(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new ValidationError(field, `must be an integer from ${min} to ${max}`);
  }
  return value;
}

/** A finite number greater than 0, fractions allowed (CPUs). */
export function positiveNumber(value: unknown, field: string): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
    throw new ValidationError(field, "must be a positive number");
  }
  return value;
}

/** A finite number from `min` to `max`, both included, fractions allowed. */
export function numberIn(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < min || value > max) {
    throw new ValidationError(field, `must be a number from ${min} to ${max}`);
  }
  return value;
}

/** An array of strings, each checked by `item` (default: `str`) under `field[i]`. */
export function strings(value: unknown, field: string, item: StringCheck = str): string[] {
  if (!Array.isArray(value)) throw new ValidationError(field, "must be an array of strings");
  return value.map((v, i) => item(v, `${field}[${i}]`));
}

/**
 * A command and its arguments: a non-empty array of strings whose first is not empty.
 * `ifEmpty` is the problem an empty array is reported with (a target where args may be
 * left out says what leaving them out means).
 */
export function commandArgs(value: unknown, field = "args", ifEmpty = "must name a command (empty array)"): string[] {
  if (value === undefined) throw new ValidationError(field, "required (the command to run)");
  const out = strings(value, field);
  if (out.length === 0) throw new ValidationError(field, ifEmpty);
  if (out[0] === "") throw new ValidationError(`${field}[0]`, "must not be empty");
  return out;
}

export interface EnvOptions {
  /**
   * Names must be identifiers ([A-Za-z_][A-Za-z0-9_]*): for a target that writes them into a
   * shell script or a config line. Otherwise any name without "=" or NUL is taken.
   */
  readonly identifiers?: boolean;
  /** The check of each value (default: `str`). */
  readonly value?: StringCheck;
}

/** Environment variables: an object of NAME: "value", reported as `env.NAME`. */
export function envVars(value: unknown, field = "env", options: EnvOptions = {}): Record<string, string> {
  const obj = record(value, field);
  const check = options.value ?? str;
  const out: Record<string, string> = {};
  for (const [key, val] of entriesByKey(obj)) {
    const at = `${field}.${key}`;
    if (options.identifiers) {
      if (!ENV_IDENTIFIER.test(key)) throw new ValidationError(at, "name must be letters, digits and _, not starting with a digit");
    } else if (key === "" || key.includes("=") || key.includes("\0")) {
      throw new ValidationError(at, 'name must be non-empty and contain no "=" or NUL');
    }
    out[key] = check(val, at);
  }
  return out;
}

/** An absolute host path that exists (anything: file, directory, device). `text` checks the string first. */
export function hostPath(value: unknown, field: string, text: StringCheck = str): string {
  return existing(value, field, text).path;
}

/** An absolute host path of an existing directory. */
export function hostDir(value: unknown, field: string, text: StringCheck = str): string {
  const { path, stats } = existing(value, field, text);
  if (!stats.isDirectory()) throw new ValidationError(field, `${path} is not a directory`);
  return path;
}

/** An absolute host path of an existing regular file. */
export function hostFile(value: unknown, field: string, text: StringCheck = str): string {
  const { path, stats } = existing(value, field, text);
  if (!stats.isFile()) throw new ValidationError(field, `${path} is not a file`);
  return path;
}

function existing(value: unknown, field: string, text: StringCheck): { path: string; stats: Stats } {
  if (value === undefined) throw new ValidationError(field, "is required");
  const path = text(value, field);
  if (!isAbsolute(path)) throw new ValidationError(field, "must be an absolute host path");
  try {
    return { path, stats: statSync(path) };
  } catch {
    throw new ValidationError(field, `${path} does not exist`);
  }
}

/** An absolute path inside the container, without "..", normalised ("/a//b/" is "/a/b"). */
export function containerPath(value: unknown, field: string, text: StringCheck = str): string {
  const path = text(value, field);
  if (!path.startsWith("/")) throw new ValidationError(field, "must be an absolute path inside the container");
  if (path.split("/").includes("..")) throw new ValidationError(field, 'must not contain ".."');
  return posix.normalize(path);
}

/**
 * Bind mounts: [{ source, destination, readOnly? }], a source that exists on the host and a
 * destination inside the container other than "/". `text` checks both paths' strings first.
 */
export function mounts(value: unknown, field = "mounts", text: StringCheck = str): BindMount[] {
  if (!Array.isArray(value)) throw new ValidationError(field, "must be an array");
  return value.map((item, i) => {
    const prefix = `${field}[${i}]`;
    const obj = record(item, prefix);
    refuseUnknown(obj, MOUNT_FIELDS, `${prefix}.`);
    const mount: BindMount = {
      source: hostPath(obj.source, `${prefix}.source`, text),
      destination: containerPath(obj.destination, `${prefix}.destination`, text),
    };
    if (mount.destination === "/") throw new ValidationError(`${prefix}.destination`, 'must not be "/"');
    if (obj.readOnly !== undefined) mount.readOnly = bool(obj.readOnly, `${prefix}.readOnly`);
    return mount;
  });
}

/**
 * The `mounts` a spec made from `vmctl run` gets: the explicit spec's own (when it has
 * a list), then the shorthand's `-v` mounts; {} when there are none, so the spec stays as
 * the caller wrote it. An explicit `mounts` that is no list is left for validate() to refuse.
 */
export function mountsFromRun(input: { readonly mounts: readonly BindMount[]; readonly spec: Readonly<Record<string, unknown>> }): { mounts?: unknown } {
  if (input.mounts.length === 0) return {};
  const explicit = input.spec.mounts;
  if (explicit !== undefined && !Array.isArray(explicit)) return { mounts: explicit };
  return { mounts: [...((explicit as unknown[] | undefined) ?? []), ...input.mounts] };
}
