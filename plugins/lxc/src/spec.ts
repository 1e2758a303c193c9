// The lxc target's spec: what a user may ask for, checked strictly. Unknown fields are
// refused so a typo never silently means "default". Everything that ends up on a line of
// the LXC config is checked here, so no value can smuggle in a further config key.
import { statSync } from "node:fs";
import { isAbsolute, posix } from "node:path";
import { ValidationError } from "@vmctl/core/contract";

/** A host path bind-mounted into the container. */
export type LxcMount = {
  /** Absolute host path; must exist. */
  source: string;
  /** Absolute path inside the container. */
  destination: string;
  /** Mount read-only (default false). */
  readOnly?: boolean;
};

export type LxcResources = {
  /** Memory limit in MiB (cgroup memory.limit_in_bytes / memory.max). */
  memoryMiB?: number;
  /** CPU limit in CPUs, fractions allowed (CFS quota over a 100 ms period). */
  cpus?: number;
  /** Maximum number of processes (cgroup pids.max). */
  pids?: number;
};

/** A validated lxc spec: a type alias (not an interface) so it is a JsonValue. Exactly one of rootfs / template. */
export type LxcSpec = {
  /** Absolute host directory used as the container's root filesystem (never modified beyond mount points). */
  rootfs?: string;
  /** An installed LXC template (`lxc-create -t NAME`) that builds a private rootfs. */
  template?: string;
  /** Arguments for the template (after `--`). */
  templateArgs?: string[];
  /** The command and its arguments; args[0] is looked up on PATH inside the rootfs. */
  args: string[];
  env?: Record<string, string>;
  /** Working directory inside the container (default "/"). */
  workdir?: string;
  /** "none" (default): an empty network namespace. */
  network?: "none";
  mounts?: LxcMount[];
  resources?: LxcResources;
  /** Mount the rootfs read-only (default: true for `rootfs`, which services may share; false for `template`). */
  readonlyRootfs?: boolean;
};

const SPEC_FIELDS = [
  "rootfs",
  "template",
  "templateArgs",
  "args",
  "env",
  "workdir",
  "network",
  "mounts",
  "resources",
  "readonlyRootfs",
];
const MOUNT_FIELDS = ["source", "destination", "readOnly"];
const RESOURCE_FIELDS = ["memoryMiB", "cpus", "pids"];
const TEMPLATE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Checks an untrusted spec and returns it typed, with nothing but known fields.
 * Defaults are not filled in (the record keeps what the user said); the config builder
 * applies them. Whether a template is installed is host state, checked at create.
 */
export function parseLxcSpec(input: unknown): LxcSpec {
  const obj = record(input, "spec");
  refuseUnknown(obj, SPEC_FIELDS, "");

  if (obj.rootfs !== undefined && obj.template !== undefined) {
    throw new ValidationError("template", "give either rootfs or template, not both");
  }
  if (obj.rootfs === undefined && obj.template === undefined) {
    throw new ValidationError("rootfs", "required (an absolute host directory), unless template is given");
  }
  const spec: LxcSpec = { args: args(obj.args) };
  if (obj.rootfs !== undefined) spec.rootfs = hostDir(obj.rootfs, "rootfs");
  if (obj.template !== undefined) {
    const name = str(obj.template, "template");
    if (!TEMPLATE_NAME.test(name)) throw new ValidationError("template", "must be a template name like \"busybox\"");
    spec.template = name;
  }
  if (obj.templateArgs !== undefined) {
    if (spec.template === undefined) throw new ValidationError("templateArgs", "only with template");
    spec.templateArgs = strings(obj.templateArgs, "templateArgs");
  }
  if (obj.env !== undefined) spec.env = env(obj.env);
  if (obj.workdir !== undefined) spec.workdir = containerPath(obj.workdir, "workdir");
  if (obj.network !== undefined) {
    if (obj.network !== "none") {
      throw new ValidationError("network", 'must be "none" (this target gives containers an empty network namespace)');
    }
    spec.network = "none";
  }
  if (obj.mounts !== undefined) spec.mounts = mounts(obj.mounts);
  if (obj.resources !== undefined) spec.resources = resources(obj.resources);
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

/** A string that is written on one line of the LXC config. */
function line(value: unknown, field: string): string {
  const text = str(value, field);
  if (/[\n\r]/.test(text)) throw new ValidationError(field, "must not contain a line break");
  return text;
}

/** A path written into an lxc.mount.entry (fstab syntax: whitespace separates fields). */
function fstabPath(value: unknown, field: string): string {
  const text = line(value, field);
  if (/\s/.test(text)) throw new ValidationError(field, "must not contain whitespace (LXC mount entries are fstab lines)");
  return text;
}

function bool(value: unknown, field: string): boolean {
  if (typeof value !== "boolean") throw new ValidationError(field, "must be a boolean");
  return value;
}

function hostDir(value: unknown, field: string): string {
  const path = line(value, field);
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
  const path = fstabPath(value, field);
  if (!isAbsolute(path)) throw new ValidationError(field, "must be an absolute host path");
  try {
    statSync(path);
  } catch {
    throw new ValidationError(field, `${path} does not exist`);
  }
  return path;
}

function containerPath(value: unknown, field: string): string {
  const path = fstabPath(value, field);
  if (!path.startsWith("/")) throw new ValidationError(field, "must be an absolute path inside the container");
  if (path.split("/").includes("..")) throw new ValidationError(field, 'must not contain ".."');
  return posix.normalize(path);
}

function strings(value: unknown, field: string): string[] {
  if (!Array.isArray(value)) throw new ValidationError(field, "must be an array of strings");
  return value.map((item, i) => str(item, `${field}[${i}]`));
}

function args(value: unknown): string[] {
  if (value === undefined) throw new ValidationError("args", "required (the command to run)");
  const out = strings(value, "args");
  if (out.length === 0) throw new ValidationError("args", "must name a command (empty array)");
  if (out[0] === "") throw new ValidationError("args[0]", "must not be empty");
  return out;
}

function env(value: unknown): Record<string, string> {
  const obj = record(value, "env");
  const out: Record<string, string> = {};
  for (const [key, val] of Object.entries(obj)) {
    const field = `env.${key}`;
    // lxc.environment = NAME=VALUE: a name LXC would split or trim differently is refused.
    if (!ENV_NAME.test(key)) throw new ValidationError(field, "name must be letters, digits and _ (not starting with a digit)");
    out[key] = line(val, field);
  }
  return out;
}

function mounts(value: unknown): LxcMount[] {
  if (!Array.isArray(value)) throw new ValidationError("mounts", "must be an array");
  return value.map((item, i) => {
    const prefix = `mounts[${i}]`;
    const obj = record(item, prefix);
    refuseUnknown(obj, MOUNT_FIELDS, `${prefix}.`);
    const mount: LxcMount = {
      source: hostPath(obj.source, `${prefix}.source`),
      destination: containerPath(obj.destination, `${prefix}.destination`),
    };
    if (mount.destination === "/") throw new ValidationError(`${prefix}.destination`, 'must not be "/"');
    if (obj.readOnly !== undefined) mount.readOnly = bool(obj.readOnly, `${prefix}.readOnly`);
    return mount;
  });
}

function resources(value: unknown): LxcResources {
  const obj = record(value, "resources");
  refuseUnknown(obj, RESOURCE_FIELDS, "resources.");
  const out: LxcResources = {};
  if (obj.memoryMiB !== undefined) out.memoryMiB = positiveInt(obj.memoryMiB, "resources.memoryMiB");
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
