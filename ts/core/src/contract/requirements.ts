// What a target needs on the host, declared as data on its registration
// (`TargetRegistration.requires`) so `vmctl doctor` can say what is missing and how to
// fix it without running any of the plugin's code. The evaluator is in the target kit
// (`evaluateRequirements`); the shape is checked by `parseRequirements` there too.

/** What every requirement says besides where to look. */
export interface RequirementBase {
  /** One line: what the target needs it for ("runs the containers", "network \"bridge\""). */
  readonly why: string;
  /** The target works without it, only a feature is missing (say which in `why`). Default false. */
  readonly optional?: boolean;
  /** The Debian package that provides it: doctor's fix is `apt-get install <package>`. */
  readonly package?: string;
  /** A fix other than a package, one line (`npm run build`, `start dockerd`, `modprobe kvm_amd`). */
  readonly fix?: string;
}

/**
 * An executable, looked up in this order: `targets.<target>.<option>` of the daemon's
 * config (when set, only it counts), `$env` (likewise), `paths` (absolute), then `name`
 * and each of `or` on PATH plus /usr/local/sbin, /usr/sbin and /sbin.
 */
export interface BinaryRequirement extends RequirementBase {
  readonly kind: "binary";
  /** A file name, not a path: `runc`. */
  readonly name: string;
  /** Other names any one of which will do: `["crun"]` for runc. */
  readonly or?: readonly string[];
  /** Absolute paths tried before PATH (a build in a checkout). */
  readonly paths?: readonly string[];
  /** An environment variable that names the binary when set (`VMCTL_VMM_BIN`). */
  readonly env?: string;
  /** The target option that names the binary when set (`vmm` for `targets.microvm.vmm`). */
  readonly option?: string;
  /** Arguments that print its version (`["--version"]`): doctor shows the first line. */
  readonly versionArgs?: readonly string[];
}

/** A device node the target opens, with the access it needs. */
export interface DeviceRequirement extends RequirementBase {
  readonly kind: "device";
  /** Absolute, under /dev: `/dev/kvm`. */
  readonly path: string;
  /** "r" to read, "rw" to read and write. */
  readonly access: "r" | "rw";
  /** The target option that names another device when set (`kvm` for `targets.microvm.kvm`). */
  readonly option?: string;
}

/**
 * A file that must exist: a kernel feature under /proc or /sys (`/sys/module/vhost_vsock`,
 * `/proc/filesystems` containing `overlay`), or a file a package installs.
 */
export interface FileRequirement extends RequirementBase {
  readonly kind: "file";
  /** Absolute. */
  readonly path: string;
  /** A word the file's text must contain (whole word), e.g. `overlay` in /proc/filesystems. */
  readonly contains?: string;
}

/** A unix socket some daemon answers on: `/var/run/docker.sock`. */
export interface SocketRequirement extends RequirementBase {
  readonly kind: "socket";
  /** Absolute. */
  readonly path: string;
  /** The target option that names another socket when set (`socket` for `targets.docker.socket`). */
  readonly option?: string;
}

/** One thing a target needs on the host: plain JSON data, never code. */
export type HostRequirement = BinaryRequirement | DeviceRequirement | FileRequirement | SocketRequirement;

/** The kinds of HostRequirement, in the order doctor lists them. */
export const REQUIREMENT_KINDS = ["binary", "device", "file", "socket"] as const satisfies readonly HostRequirement["kind"][];

/** One requirement as this host has it. */
export interface RequirementStatus {
  readonly requirement: HostRequirement;
  /** Short, for a table: `runc or crun`, `/dev/kvm (rw)`. */
  readonly name: string;
  readonly met: boolean;
  /** Where it was found (the binary's path, the device, the socket). */
  readonly found?: string;
  /** The first line of its version output, for a binary declaring `versionArgs`. */
  readonly version?: string;
  /** Why it is not met: `not found on PATH or /usr/local/sbin:/usr/sbin:/sbin`, `EACCES`. */
  readonly problem?: string;
  /** What to do when not met: `apt-get install runc`, the `fix`, or both. */
  readonly fix?: string;
}
