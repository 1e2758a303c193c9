// The docker target's spec: what a user may ask for, checked strictly. Unknown fields are
// refused so a typo never silently means "default".
import { ValidationError } from "@vmctl/core/contract";
import {
  commandArgs,
  containerPath,
  envVars,
  hostFile,
  mounts,
  record,
  refuseUnknown,
  str,
  type BindMount,
} from "@vmctl/core/target-kit";

/** A host path bind-mounted into the container. */
export type DockerMount = BindMount;

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
  const obj = record(input, "");
  refuseUnknown(obj, SPEC_FIELDS, "");
  const spec: DockerSpec = {};
  if (obj.image !== undefined && obj.imageArchive !== undefined) {
    throw new ValidationError("imageArchive", 'give either "image" or "imageArchive", not both');
  }
  if (obj.image !== undefined) spec.image = imageReference(obj.image);
  else if (obj.imageArchive !== undefined) spec.imageArchive = hostFile(obj.imageArchive, "imageArchive");
  else throw new ValidationError("image", 'required: a local image reference (or "imageArchive", a docker save archive)');
  if (obj.args !== undefined) spec.args = commandArgs(obj.args, "args", "must name a command (omit args to run the image's own)");
  if (obj.env !== undefined) spec.env = envVars(obj.env);
  if (obj.workdir !== undefined) spec.workdir = containerPath(obj.workdir, "workdir");
  if (obj.mounts !== undefined) spec.mounts = distinctDestinations(mounts(obj.mounts));
  if (obj.resources !== undefined) spec.resources = resources(obj.resources);
  if (obj.network !== undefined) spec.network = network(obj.network);
  return spec;
}

function imageReference(value: unknown): string {
  const ref = str(value, "image");
  if (ref === "") throw new ValidationError("image", "must not be empty");
  if (!IMAGE_REFERENCE.test(ref)) throw new ValidationError("image", `${JSON.stringify(ref)} is not an image reference`);
  return ref;
}

/**
 * Docker refuses two mounts on one destination ("Duplicate mount point") only at create;
 * said here it names the field. `vmctl run -v` on a path the spec mounts too ends here.
 */
function distinctDestinations(list: DockerMount[]): DockerMount[] {
  const seen = new Map<string, number>();
  list.forEach((mount, i) => {
    const key = mount.destination.replace(/\/+$/, "");
    const first = seen.get(key);
    if (first !== undefined) throw new ValidationError(`mounts[${i}].destination`, `${mount.destination} is mounted already (mounts[${first}])`);
    seen.set(key, i);
  });
  return list;
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
