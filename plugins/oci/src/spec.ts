// The oci target's spec: what a user may ask for, checked strictly. Unknown fields are
// refused so a typo never silently means "default".
import { ValidationError } from "@vmctl/core/contract";
import {
  bool,
  commandArgs,
  containerPath,
  envVars,
  hostDir,
  intIn,
  mounts,
  positiveInt,
  positiveNumber,
  record,
  refuseUnknown,
  type BindMount,
} from "@vmctl/core/target-kit";

export type OciRuntimeName = "runc" | "crun";

/** A host directory mounted into the container (bind mount). */
export type OciMount = BindMount;

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
const RESOURCE_FIELDS = ["memoryBytes", "cpus", "pids"];
const USER_FIELDS = ["uid", "gid"];
const RUNTIMES: readonly OciRuntimeName[] = ["runc", "crun"];
/** The largest uid / gid (2^32 - 1 is "no id"). */
const MAX_ID = 0xfffffffe;

/**
 * Checks an untrusted spec and returns it typed, with nothing but known fields.
 * Defaults are not filled in here (the record keeps what the user said); the bundle
 * generator applies them. Throws ValidationError naming the field path.
 */
export function parseOciSpec(input: unknown): OciSpec {
  const obj = record(input, "");
  refuseUnknown(obj, SPEC_FIELDS, "");

  const spec: OciSpec = {
    rootfs: hostDir(obj.rootfs, "rootfs"),
    args: commandArgs(obj.args),
  };
  if (obj.env !== undefined) spec.env = envVars(obj.env);
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

function user(value: unknown): { uid: number; gid: number } {
  const obj = record(value, "user");
  refuseUnknown(obj, USER_FIELDS, "user.");
  return { uid: intIn(obj.uid, "user.uid", 0, MAX_ID), gid: intIn(obj.gid, "user.gid", 0, MAX_ID) };
}

function resources(value: unknown): OciResources {
  const obj = record(value, "resources");
  refuseUnknown(obj, RESOURCE_FIELDS, "resources.");
  const out: OciResources = {};
  if (obj.memoryBytes !== undefined) out.memoryBytes = positiveInt(obj.memoryBytes, "resources.memoryBytes");
  if (obj.cpus !== undefined) out.cpus = positiveNumber(obj.cpus, "resources.cpus");
  if (obj.pids !== undefined) out.pids = positiveInt(obj.pids, "resources.pids");
  return out;
}
