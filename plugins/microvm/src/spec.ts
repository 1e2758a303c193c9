// The microvm target's spec: what a user may ask for, checked strictly. Unknown fields
// are refused so a typo never silently means "default". Pure apart from stat() of the
// host paths it names, for a spec without a kernel a look at the kernel cache, and the
// VMM's limits (vmm-limits.ts: what the VMM checks, checked here first against the VMM's
// own published rules, never a copy, so that a refusal names the spec's field).
// An `image` is only checked as a reference here (the target kit's checkReference, the
// rule the image store applies too): pulling it is prepare()'s work.
import { ValidationError } from "@vmctl/core/contract";
import { bool, checkReference, commandArgs, envVars, hostFile, intIn, positiveInt, record, refuseUnknown, str, type BindMount } from "@vmctl/core/target-kit";
import { requireVmmBinary, type VmmLimits } from "@vmctl/vmm-client";
import { kernelCacheDir, requireDefaultKernel } from "./kernel-cache.js";
import { vmmLimitsOf } from "./vmm-limits.js";
import { workspaceCopyOut, workspaceMounts } from "./workspace-spec.js";

/** A block device backed by a host file (virtio-blk behind virtio-mmio). */
export type MicrovmDrive = {
  /** Unique within the VM; the guest reads it back with virtio-blk GET_ID. */
  id: string;
  /** Absolute path of an existing regular file on the host. */
  path: string;
  /** Attach read-only (default false). */
  readOnly?: boolean;
  /** The root device: placed first on the virtio-mmio bus (default false; at most one). */
  root?: boolean;
};

/** A validated microvm spec: a type alias (not an interface) so it is a JsonValue. */
export type MicrovmSpec = {
  /**
   * Absolute path of the guest kernel (ELF vmlinux or bzImage, or a test guest ELF).
   * Optional in the input: without it, the kernel cache's default (`vmctl kernel build`).
   */
  kernel: string;
  /**
   * An OCI image reference (`node:20`, `oci:/path/to/layout:tag`, `docker-archive:FILE`):
   * its read-only base disk becomes drive `rootfs` (/dev/vda) and a fresh sparse ext4
   * writable layer drive `scratch` (/dev/vdb). Resolved and pinned by prepare().
   */
  image?: string;
  /** Size of the writable layer in MiB (default {@link DEFAULT_DISK_SIZE_MIB}); only with `image`. */
  diskSizeMib?: number;
  /** Kernel command line; the VMM appends the virtio_mmio.device= declarations. */
  bootArgs?: string;
  /** Absolute path of an initramfs (newc cpio, compressed or not) the kernel unpacks as its root. */
  initrd?: string;
  /** 1 to the VMM's maxVcpus (default 1). */
  vcpus?: number;
  /** Guest memory in MiB, a positive integer within the VMM's minMemMib..maxMemMib (default 128). */
  memoryMib?: number;
  drives?: MicrovmDrive[];
  /**
   * With `image`: run the image's workload through the guest agent (vmctl-agent as init
   * from its initramfs, reached over vsock; see workload.ts). Set by the parser to true
   * for an image booted by the default kernel (no `kernel` given); false boots the image's
   * disks with the kernel's own init, as before the agent.
   */
  agent?: boolean;
  /** With the agent: the command (default: the image's entrypoint + cmd). */
  args?: string[];
  /** With the agent: environment, over the image's. */
  env?: Record<string, string>;
  /** With the agent: working directory in the guest (default: the image's WorkingDir). */
  cwd?: string;
  /** With the agent: "uid[:gid]" or "name[:group]" (default: the image's User, else root). */
  user?: string;
  /**
   * With the agent: host paths copied into the guest before the workload starts (a
   * directory's contents into `destination`, a file to `destination`). A copy, not a
   * mount: changes in the VM never reach the host (`copyOut` brings results back), and
   * `readOnly` is accepted but means nothing more.
   */
  mounts?: BindMount[];
  /** With the agent: guest paths kept when the workload ends, for copyOut() after the VM has powered off. */
  copyOut?: string[];
};

export const DEFAULT_VCPUS = 1;
export const DEFAULT_MEMORY_MIB = 128;

/**
 * The writable layer's default size: 10 GiB. It is sparse (blocks cost disk only once the
 * guest writes them), so it can be generous enough for `npm install` and costs nothing idle.
 */
export const DEFAULT_DISK_SIZE_MIB = 10_240;
/** The image engine's smallest writable layer. */
export const MIN_DISK_SIZE_MIB = 16;
/** 1 TiB. */
export const MAX_DISK_SIZE_MIB = 1_048_576;
/** The drives a spec with an image gets, first on the bus: their ids are the target's. */
export const IMAGE_DRIVE_IDS = { rootfs: "rootfs", scratch: "scratch" } as const;
const RESERVED_DRIVE_IDS: readonly string[] = Object.values(IMAGE_DRIVE_IDS);

const SPEC_FIELDS = ["kernel", "image", "diskSizeMib", "bootArgs", "initrd", "vcpus", "memoryMib", "drives", "agent", "args", "env", "cwd", "user", "mounts", "copyOut"];
/** The fields that only mean something to the guest agent. */
const AGENT_FIELDS = ["args", "env", "cwd", "user"] as const;
/** The fields the guest agent copies with (workspace-spec.ts). */
const COPY_FIELDS = ["mounts", "copyOut"] as const;
const DRIVE_FIELDS = ["id", "path", "readOnly", "root"];

export interface ParseOptions {
  /** The kernel cache a spec without `kernel` takes its default from (default: {@link kernelCacheDir}). */
  readonly kernelCache?: string;
  /**
   * The vmctl-vmm the spec will run on (the factory's), whose limits (vmm-limits.ts) the
   * drive count, drive ids, vCPUs and memory are checked against, so that a bad value is
   * refused at create naming the spec's field, not at start naming the VMM's
   * (spec-vmm-agreement tests the drive ids). Asked only when the spec has one of those
   * fields; default: the one {@link requireVmmBinary} finds.
   */
  readonly vmm?: string;
  /** The limits themselves (a live VMM's GetInfo), instead of asking `vmm`. */
  readonly limits?: VmmLimits;
}

/**
 * Checks an untrusted spec and returns it typed, with nothing but known fields.
 * Defaults are not filled in (the record keeps what the user said); the controller
 * applies them. Throws ValidationError naming the field path.
 *
 * The one exception is `kernel`: without it the spec gets the cache's default kernel
 * now, as the path inside its key directory. The record then names the kernel the VM
 * boots, and a later `vmctl kernel build` (which moves `default`) does not change what
 * an existing service boots on its next start. No default built: FAILED_PRECONDITION
 * naming `kernel`, saying to run `vmctl kernel build`.
 */
export function parseMicrovmSpec(input: unknown, options: ParseOptions = {}): MicrovmSpec {
  const obj = record(input, "");
  refuseUnknown(obj, SPEC_FIELDS, "");
  // Asked only when a field needs them: a spec without one is checked without a VMM binary.
  const limits = (): VmmLimits => options.limits ?? vmmLimitsOf(options.vmm ?? requireVmmBinary());
  const kernel = obj.kernel === undefined ? requireDefaultKernel(options.kernelCache ?? kernelCacheDir()) : hostFile(obj.kernel, "kernel");
  const spec: MicrovmSpec = { kernel };
  if (obj.image !== undefined) spec.image = checkReference(obj.image, "image");
  if (obj.diskSizeMib !== undefined) {
    if (spec.image === undefined) throw new ValidationError("diskSizeMib", "is the size of an image's writable layer: only allowed with `image`");
    spec.diskSizeMib = intIn(obj.diskSizeMib, "diskSizeMib", MIN_DISK_SIZE_MIB, MAX_DISK_SIZE_MIB);
  }
  if (obj.bootArgs !== undefined) {
    spec.bootArgs = str(obj.bootArgs, "bootArgs");
    if (/[\n\r]/.test(spec.bootArgs)) throw new ValidationError("bootArgs", "must be one line");
  }
  if (obj.initrd !== undefined) spec.initrd = hostFile(obj.initrd, "initrd");
  if (obj.vcpus !== undefined) spec.vcpus = intIn(obj.vcpus, "vcpus", 1, limits().maxVcpus);
  if (obj.memoryMib !== undefined) spec.memoryMib = memoryMib(obj.memoryMib, limits());
  if (obj.drives !== undefined) spec.drives = drives(obj.drives, spec.image !== undefined, limits());
  agentFields(obj, spec, obj.kernel === undefined);
  return spec;
}

/** A spec with its defaults applied (the image, when there is one, still unresolved). */
export type EffectiveSpec = {
  kernel: string;
  bootArgs: string;
  initrd?: string;
  vcpus: number;
  memoryMib: number;
  drives: MicrovmDrive[];
  image?: string;
  diskSizeMib?: number;
  agent?: boolean;
};

/** Applies the defaults: what the VM is configured with, apart from the image's drives (vm-config.ts). */
export function effective(spec: MicrovmSpec): EffectiveSpec {
  return {
    kernel: spec.kernel,
    bootArgs: spec.bootArgs ?? "",
    ...(spec.initrd === undefined ? {} : { initrd: spec.initrd }),
    vcpus: spec.vcpus ?? DEFAULT_VCPUS,
    memoryMib: spec.memoryMib ?? DEFAULT_MEMORY_MIB,
    drives: spec.drives ?? [],
    ...(spec.image === undefined ? {} : { image: spec.image, diskSizeMib: spec.diskSizeMib ?? DEFAULT_DISK_SIZE_MIB }),
    ...(spec.agent ? { agent: true } : {}),
  };
}

/**
 * `agent` (default: true for an image on the default kernel) and the workload's fields,
 * which only the agent can honour.
 */
function agentFields(obj: Record<string, unknown>, spec: MicrovmSpec, defaultKernel: boolean): void {
  if (obj.agent !== undefined) {
    spec.agent = bool(obj.agent, "agent");
    if (spec.agent && spec.image === undefined) throw new ValidationError("agent", "the guest agent runs an image's workload: only with `image`");
  } else if (spec.image !== undefined && defaultKernel) {
    spec.agent = true;
  }
  if (!spec.agent) {
    const given = AGENT_FIELDS.find((f) => obj[f] !== undefined);
    if (given) throw new ValidationError(given, "is the workload's, run by the guest agent: only with `image` on the default kernel (or `agent: true`)");
    const copy = COPY_FIELDS.find((f) => obj[f] !== undefined);
    if (copy) throw new ValidationError(copy, "is copied by the guest agent, and this VM has none: only with `image` on the default kernel (or `agent: true`)");
    return;
  }
  if (spec.initrd !== undefined) throw new ValidationError("initrd", "an image VM's initrd is the guest agent's (set `agent: false` to boot your own)");
  if (obj.args !== undefined) spec.args = commandArgs(obj.args);
  if (obj.env !== undefined) spec.env = envVars(obj.env);
  if (obj.cwd !== undefined) {
    spec.cwd = str(obj.cwd, "cwd");
    if (!spec.cwd.startsWith("/")) throw new ValidationError("cwd", "must be an absolute path in the guest");
  }
  if (obj.user !== undefined) {
    spec.user = str(obj.user, "user");
    if (spec.user === "" || /[\s\0]/.test(spec.user)) throw new ValidationError("user", "must be uid[:gid] or name[:group]");
  }
  if (obj.mounts !== undefined) spec.mounts = workspaceMounts(obj.mounts);
  if (obj.copyOut !== undefined) spec.copyOut = workspaceCopyOut(obj.copyOut);
}

function memoryMib(value: unknown, limits: VmmLimits): number {
  const mib = positiveInt(value, "memoryMib");
  if (mib < limits.minMemMib || mib > limits.maxMemMib) throw new ValidationError("memoryMib", `must be between ${limits.minMemMib} and ${limits.maxMemMib}`);
  return mib;
}

function drives(value: unknown, withImage: boolean, limits: VmmLimits): MicrovmDrive[] {
  if (!Array.isArray(value)) throw new ValidationError("drives", "must be an array");
  // An image takes two of the bus's slots (rootfs, scratch).
  const max = withImage ? limits.maxDrives - RESERVED_DRIVE_IDS.length : limits.maxDrives;
  if (value.length > max) throw new ValidationError("drives", `at most ${max} drives${withImage ? " with an image (it has rootfs and scratch)" : ""}`);
  const ids = new Set<string>();
  let root: number | undefined;
  return value.map((item, i) => {
    const prefix = `drives[${i}]`;
    const obj = record(item, prefix);
    refuseUnknown(obj, DRIVE_FIELDS, `${prefix}.`);
    const id = str(obj.id, `${prefix}.id`);
    if (!limits.driveIdPattern.test(id)) throw new ValidationError(`${prefix}.id`, `must match ${limits.driveIdPattern.source} (vmctl-vmm's rule for a drive id)`);
    if (ids.has(id)) throw new ValidationError(`${prefix}.id`, `"${id}" is used by another drive`);
    if (withImage && RESERVED_DRIVE_IDS.includes(id)) {
      throw new ValidationError(`${prefix}.id`, `"${id}" is reserved: with an image, rootfs is its base disk and scratch its writable layer`);
    }
    ids.add(id);
    const drive: MicrovmDrive = { id, path: hostFile(obj.path, `${prefix}.path`) };
    if (obj.readOnly !== undefined) drive.readOnly = bool(obj.readOnly, `${prefix}.readOnly`);
    if (obj.root !== undefined) {
      drive.root = bool(obj.root, `${prefix}.root`);
      if (drive.root) {
        if (withImage) throw new ValidationError(`${prefix}.root`, "the image's base disk (drive rootfs) is the root device");
        if (root !== undefined) throw new ValidationError(`${prefix}.root`, `drives[${root}] is already the root device`);
        root = i;
      }
    }
    return drive;
  });
}
