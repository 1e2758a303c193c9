// The lxc target's spec: what a user may ask for, checked strictly. Unknown fields are
// refused so a typo never silently means "default". Everything that ends up on a line of
// the LXC config is checked here, so no value can smuggle in a further config key.
import { ValidationError } from "@vmctl/core/contract";
import {
  bool,
  commandArgs,
  containerPath,
  envVars,
  hostDir,
  mounts,
  positiveInt,
  positiveNumber,
  record,
  refuseUnknown,
  str,
  strings,
  type BindMount,
} from "@vmctl/core/target-kit";

/** A host path bind-mounted into the container. */
export type LxcMount = BindMount;

export type LxcResources = {
  /** Memory limit in MiB (cgroup memory.limit_in_bytes / memory.max). */
  memoryMiB?: number;
  /** CPU limit in CPUs, fractions allowed (CFS quota over a 100 ms period). */
  cpus?: number;
  /** Maximum number of processes (cgroup pids.max). */
  pids?: number;
};

/** What `network` said before services got the orchestrator's networks; only ever read from an old record. */
export type LegacyLxcNetwork = "none" | "bridge";

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
  /**
   * Never accepted any more (the service's own `network` says where it goes); a record
   * made before may still carry "bridge", which destroy and adopt clean up after (legacy-bridge.ts).
   */
  network?: LegacyLxcNetwork;
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
const RESOURCE_FIELDS = ["memoryMiB", "cpus", "pids"];
const TEMPLATE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/**
 * Checks an untrusted spec and returns it typed, with nothing but known fields.
 * Defaults are not filled in (the record keeps what the user said); the config builder
 * applies them. Whether a template is installed is host state, checked at create.
 */
export function parseLxcSpec(input: unknown): LxcSpec {
  const obj = record(input, "");
  refuseUnknown(obj, SPEC_FIELDS, "");

  if (obj.rootfs !== undefined && obj.template !== undefined) {
    throw new ValidationError("template", "give either rootfs or template, not both");
  }
  if (obj.rootfs === undefined && obj.template === undefined) {
    throw new ValidationError("rootfs", "required (an absolute host directory), unless template is given");
  }
  const spec: LxcSpec = { args: commandArgs(obj.args) };
  if (obj.rootfs !== undefined) spec.rootfs = hostDir(obj.rootfs, "rootfs", line);
  if (obj.template !== undefined) {
    const name = str(obj.template, "template");
    if (!TEMPLATE_NAME.test(name)) throw new ValidationError("template", "must be a template name like \"busybox\"");
    spec.template = name;
  }
  if (obj.templateArgs !== undefined) {
    if (spec.template === undefined) throw new ValidationError("templateArgs", "only with template");
    spec.templateArgs = strings(obj.templateArgs, "templateArgs");
  }
  // lxc.environment = NAME=VALUE: a name LXC would split or trim differently is refused.
  if (obj.env !== undefined) spec.env = envVars(obj.env, "env", { identifiers: true, value: line });
  if (obj.workdir !== undefined) spec.workdir = containerPath(obj.workdir, "workdir", fstabPath);
  // Refused by name rather than as unknown: the answer is where networking moved to.
  if (obj.network !== undefined) {
    throw new ValidationError(
      "network",
      "is no longer an lxc spec field: a service's network is the service's own (`vmctl run --network NAME`, the create request's network field); without one the container has an empty network namespace",
    );
  }
  if (obj.mounts !== undefined) spec.mounts = mounts(obj.mounts, "mounts", fstabPath);
  if (obj.resources !== undefined) spec.resources = resources(obj.resources);
  if (obj.readonlyRootfs !== undefined) spec.readonlyRootfs = bool(obj.readonlyRootfs, "readonlyRootfs");
  return spec;
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

function resources(value: unknown): LxcResources {
  const obj = record(value, "resources");
  refuseUnknown(obj, RESOURCE_FIELDS, "resources.");
  const out: LxcResources = {};
  if (obj.memoryMiB !== undefined) out.memoryMiB = positiveInt(obj.memoryMiB, "resources.memoryMiB");
  if (obj.cpus !== undefined) out.cpus = positiveNumber(obj.cpus, "resources.cpus");
  if (obj.pids !== undefined) out.pids = positiveInt(obj.pids, "resources.pids");
  return out;
}
