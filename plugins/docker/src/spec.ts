// The docker target's spec: what a user may ask for, checked strictly. Unknown fields are
// refused so a typo never silently means "default".
import { statSync } from "node:fs";
import { isAbsolute, posix } from "node:path";
import { ValidationError } from "@vmctl/core/contract";

/** A host path bind-mounted into the container. */
export type DockerMount = {
  /** Absolute host path; must exist. */
  source: string;
  /** Absolute path inside the container, not "/". */
  destination: string;
  /** Mount read-only (default false). */
  readOnly?: boolean;
};

export type DockerResources = {
  /** CPU limit in CPUs, fractions allowed (HostConfig.NanoCpus). */
  cpus?: number;
  /** Memory limit in MiB (HostConfig.Memory); Docker's minimum is 6 MiB. */
  memoryMiB?: number;
};

/**
 * A validated docker spec: a type alias (not an interface) so it is a JsonValue.
 * Exactly one of `image` and `imageArchive` is set.
 */
export type DockerSpec = {
  /** A local image reference (tag, name@digest or id); it is never pulled. */
  image?: string;
  /** Absolute path of a `docker save` archive (tar, optionally compressed), loaded at prepare. */
  imageArchive?: string;
  /** The command and its arguments (Docker's Cmd); the image's own when omitted. */
  args?: string[];
  env?: Record<string, string>;
  /** Working directory inside the container (the image's when omitted). */
  workdir?: string;
  mounts?: DockerMount[];
  resources?: DockerResources;
  /** "none" (default: loopback only) or the name of an existing Docker network. */
  network?: string;
};

const SPEC_FIELDS = ["image", "imageArchive", "args", "env", "workdir", "mounts", "resources", "network"];
const MOUNT_FIELDS = ["source", "destination", "readOnly"];
const RESOURCE_FIELDS = ["cpus", "memoryMiB"];
/** Docker's own rules for network names (daemon/names.go: RestrictedNamePattern). */
const NETWORK_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
/** Loose check of an image reference: Docker gives the precise error at inspect time. */
const IMAGE_REFERENCE = /^[a-zA-Z0-9][a-zA-Z0-9._/:@+-]*$/;
const MIN_MEMORY_MIB = 6;

/**
 * Checks an untrusted spec and returns it typed, with nothing but known fields. Defaults
 * are not filled in (the record keeps what the user said). Throws ValidationError naming
 * the field path.
 */
export function parseDockerSpec(input: unknown): DockerSpec {
  const obj = record(input, "spec");
  refuseUnknown(obj, SPEC_FIELDS, "");
  const spec: DockerSpec = {};
  if (obj.image !== undefined && obj.imageArchive !== undefined) {
    throw new ValidationError("imageArchive", 'give either "image" or "imageArchive", not both');
  }
  if (obj.image !== undefined) spec.image = imageReference(obj.image);
  else if (obj.imageArchive !== undefined) spec.imageArchive = hostFile(obj.imageArchive, "imageArchive");
  else throw new ValidationError("image", 'required: a local image reference (or "imageArchive", a docker save archive)');
  if (obj.args !== undefined) spec.args = args(obj.args);
  if (obj.env !== undefined) spec.env = env(obj.env);
  if (obj.workdir !== undefined) spec.workdir = containerPath(obj.workdir, "workdir");
  if (obj.mounts !== undefined) spec.mounts = mounts(obj.mounts);
  if (obj.resources !== undefined) spec.resources = resources(obj.resources);
  if (obj.network !== undefined) spec.network = network(obj.network);
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

function imageReference(value: unknown): string {
  const ref = str(value, "image");
  if (ref === "") throw new ValidationError("image", "must not be empty");
  if (!IMAGE_REFERENCE.test(ref)) throw new ValidationError("image", `${JSON.stringify(ref)} is not an image reference`);
  return ref;
}

function hostPath(value: unknown, field: string): { path: string; isFile: boolean } {
  const path = str(value, field);
  if (!isAbsolute(path)) throw new ValidationError(field, "must be an absolute host path");
  try {
    return { path, isFile: statSync(path).isFile() };
  } catch {
    throw new ValidationError(field, `${path} does not exist`);
  }
}

function hostFile(value: unknown, field: string): string {
  const { path, isFile } = hostPath(value, field);
  if (!isFile) throw new ValidationError(field, `${path} is not a file`);
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
  if (value.length === 0) throw new ValidationError("args", "must name a command (omit args to run the image's own)");
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

function mounts(value: unknown): DockerMount[] {
  if (!Array.isArray(value)) throw new ValidationError("mounts", "must be an array");
  return value.map((item, i) => {
    const prefix = `mounts[${i}]`;
    const obj = record(item, prefix);
    refuseUnknown(obj, MOUNT_FIELDS, `${prefix}.`);
    const mount: DockerMount = {
      source: hostPath(obj.source, `${prefix}.source`).path,
      destination: containerPath(obj.destination, `${prefix}.destination`),
    };
    if (mount.destination === "/") throw new ValidationError(`${prefix}.destination`, 'must not be "/"');
    if (obj.readOnly !== undefined) mount.readOnly = bool(obj.readOnly, `${prefix}.readOnly`);
    return mount;
  });
}

function resources(value: unknown): DockerResources {
  const obj = record(value, "resources");
  refuseUnknown(obj, RESOURCE_FIELDS, "resources.");
  const out: DockerResources = {};
  if (obj.cpus !== undefined) {
    // NanoCpus is an integer: 1e-9 CPU is its unit, 0.01 Docker's smallest accepted value.
    if (typeof obj.cpus !== "number" || !Number.isFinite(obj.cpus) || obj.cpus < 0.01) {
      throw new ValidationError("resources.cpus", "must be a number of CPUs, at least 0.01");
    }
    out.cpus = obj.cpus;
  }
  if (obj.memoryMiB !== undefined) {
    const mib = obj.memoryMiB;
    if (typeof mib !== "number" || !Number.isSafeInteger(mib) || mib < MIN_MEMORY_MIB) {
      throw new ValidationError("resources.memoryMiB", `must be an integer number of MiB, at least ${MIN_MEMORY_MIB} (Docker's minimum)`);
    }
    out.memoryMiB = mib;
  }
  return out;
}

function network(value: unknown): string {
  const name = str(value, "network");
  if (name === "host" || name.startsWith("container:")) {
    throw new ValidationError("network", `"${name}" shares another namespace; use "none" or a Docker network name`);
  }
  if (!NETWORK_NAME.test(name)) throw new ValidationError("network", `${JSON.stringify(name)} is not a Docker network name`);
  return name;
}
