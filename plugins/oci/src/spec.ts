// The oci target's spec: what a user may ask for, checked strictly. Unknown fields are
// refused so a typo never silently means "default".
import { statSync } from "node:fs";
import { isAbsolute, posix } from "node:path";
import { ValidationError } from "@vmctl/core/contract";

export type OciRuntimeName = "runc" | "crun";

/** A host directory mounted into the container (bind mount). */
export type OciMount = {
  /** Absolute host path; must exist. */
  source: string;
  /** Absolute path inside the container. */
  destination: string;
  /** Mount read-only (default false). */
  readOnly?: boolean;
};

export type OciResources = {
  /** Memory limit in bytes (cgroup memory.limit_in_bytes / memory.max). */
  memoryBytes?: number;
  /** CPU limit in CPUs, fractions allowed (CFS quota over a 100 ms period). */
  cpus?: number;
  /** Maximum number of processes (cgroup pids.max). */
  pids?: number;
};

/** A validated oci spec: a type alias (not an interface) so it is a JsonValue. */
export type OciSpec = {
  /** Absolute host directory used as the container's root filesystem. */
  rootfs: string;
  /** The command and its arguments; args[0] is looked up on PATH inside the rootfs. */
  args: string[];
  env?: Record<string, string>;
  /** Working directory inside the container (default "/"). */
  cwd?: string;
  user?: { uid: number; gid: number };
  mounts?: OciMount[];
  resources?: OciResources;
  /** Which OCI runtime runs it (default "runc"). */
  runtime?: OciRuntimeName;
  /** Mount the rootfs read-only (default true: services may share one rootfs dir). */
  readonlyRootfs?: boolean;
};

const SPEC_FIELDS = ["rootfs", "args", "env", "cwd", "user", "mounts", "resources", "runtime", "readonlyRootfs"];
const MOUNT_FIELDS = ["source", "destination", "readOnly"];
const RESOURCE_FIELDS = ["memoryBytes", "cpus", "pids"];
const USER_FIELDS = ["uid", "gid"];
const RUNTIMES: readonly OciRuntimeName[] = ["runc", "crun"];

/**
 * Checks an untrusted spec and returns it typed, with nothing but known fields.
 * Defaults are not filled in here (the record keeps what the user said); the bundle
 * generator applies them. Throws ValidationError naming the field path.
 */
export function parseOciSpec(input: unknown): OciSpec {
  const obj = record(input, "spec");
  refuseUnknown(obj, SPEC_FIELDS, "");

  const spec: OciSpec = {
    rootfs: hostDir(obj.rootfs, "rootfs"),
    args: args(obj.args),
  };
  if (obj.env !== undefined) spec.env = env(obj.env);
  if (obj.cwd !== undefined) spec.cwd = containerPath(obj.cwd, "cwd");
  if (obj.user !== undefined) spec.user = user(obj.user);
  if (obj.mounts !== undefined) spec.mounts = mounts(obj.mounts);
  if (obj.resources !== undefined) spec.resources = resources(obj.resources);
  if (obj.runtime !== undefined) {
    if (!RUNTIMES.includes(obj.runtime as OciRuntimeName)) {
      throw new ValidationError("runtime", `must be one of ${RUNTIMES.map((r) => `"${r}"`).join(", ")}`);
    }
    spec.runtime = obj.runtime as OciRuntimeName;
  }
  if (obj.readonlyRootfs !== undefined) spec.readonlyRootfs = bool(obj.readonlyRootfs, "readonlyRootfs");
  return spec;
}

function record(value: unknown, field: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ValidationError(field, "must be an object");
  }
  return value as Record<string, unknown>;
}

function refuseUnknown(obj: Record<string, unknown>, known: readonly string[], prefix: string): void {
  for (const key of Object.keys(obj)) {
    if (!known.includes(key)) throw new ValidationError(prefix + key, "unknown field");
  }
}

function str(value: unknown, field: string): string {
  if (typeof value !== "string") throw new ValidationError(field, "must be a string");
  if (value.includes("\0")) throw new ValidationError(field, "must not contain NUL");
  return value;
}

function bool(value: unknown, field: string): boolean {
  if (typeof value !== "boolean") throw new ValidationError(field, "must be a boolean");
  return value;
}

function hostDir(value: unknown, field: string): string {
  const path = str(value, field);
  if (!isAbsolute(path)) throw new ValidationError(field, "must be an absolute host path");
  let isDir: boolean;
  try {
    isDir = statSync(path).isDirectory();
  } catch {
    throw new ValidationError(field, `${path} does not exist`);
  }
  if (!isDir) throw new ValidationError(field, `${path} is not a directory`);
  return path;
}

function hostPath(value: unknown, field: string): string {
  const path = str(value, field);
  if (!isAbsolute(path)) throw new ValidationError(field, "must be an absolute host path");
  try {
    statSync(path);
  } catch {
    throw new ValidationError(field, `${path} does not exist`);
  }
  return path;
}

function containerPath(value: unknown, field: string): string {
  const path = str(value, field);
  if (!path.startsWith("/")) throw new ValidationError(field, "must be an absolute path inside the container");
  if (path.split("/").includes("..")) throw new ValidationError(field, 'must not contain ".."');
  return posix.normalize(path);
}

function args(value: unknown): string[] {
  if (!Array.isArray(value)) throw new ValidationError("args", "must be an array of strings");
  if (value.length === 0) throw new ValidationError("args", "must name a command (empty array)");
  const out = value.map((arg, i) => str(arg, `args[${i}]`));
  if (out[0] === "") throw new ValidationError("args[0]", "must not be empty");
  return out;
}

function env(value: unknown): Record<string, string> {
  const obj = record(value, "env");
  const out: Record<string, string> = {};
  for (const [key, val] of Object.entries(obj)) {
    const field = `env.${key}`;
    if (key === "" || key.includes("=") || key.includes("\0")) {
      throw new ValidationError(field, 'name must be non-empty and contain no "=" or NUL');
    }
    out[key] = str(val, field);
  }
  return out;
}

function user(value: unknown): { uid: number; gid: number } {
  const obj = record(value, "user");
  refuseUnknown(obj, USER_FIELDS, "user.");
  return { uid: id(obj.uid, "user.uid"), gid: id(obj.gid, "user.gid") };
}

function id(value: unknown, field: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > 0xfffffffe) {
    throw new ValidationError(field, "must be an integer from 0 to 4294967294");
  }
  return value;
}

function mounts(value: unknown): OciMount[] {
  if (!Array.isArray(value)) throw new ValidationError("mounts", "must be an array");
  return value.map((item, i) => {
    const prefix = `mounts[${i}]`;
    const obj = record(item, prefix);
    refuseUnknown(obj, MOUNT_FIELDS, `${prefix}.`);
    const mount: OciMount = {
      source: hostPath(obj.source, `${prefix}.source`),
      destination: containerPath(obj.destination, `${prefix}.destination`),
    };
    if (mount.destination === "/") throw new ValidationError(`${prefix}.destination`, 'must not be "/"');
    if (obj.readOnly !== undefined) mount.readOnly = bool(obj.readOnly, `${prefix}.readOnly`);
    return mount;
  });
}

function resources(value: unknown): OciResources {
  const obj = record(value, "resources");
  refuseUnknown(obj, RESOURCE_FIELDS, "resources.");
  const out: OciResources = {};
  if (obj.memoryBytes !== undefined) out.memoryBytes = positiveInt(obj.memoryBytes, "resources.memoryBytes");
  if (obj.cpus !== undefined) {
    if (typeof obj.cpus !== "number" || !Number.isFinite(obj.cpus) || obj.cpus <= 0) {
      throw new ValidationError("resources.cpus", "must be a positive number");
    }
    out.cpus = obj.cpus;
  }
  if (obj.pids !== undefined) out.pids = positiveInt(obj.pids, "resources.pids");
  return out;
}

function positiveInt(value: unknown, field: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value <= 0) {
    throw new ValidationError(field, "must be a positive integer");
  }
  return value;
}
