// Turns a validated spec into an OCI runtime config.json (runtime-spec 1.0). Pure: no I/O,
// so every rule here is unit-tested without a runtime.
import type { OciSpec } from "./spec.js";

/** The subset of the OCI runtime-spec `config.json` this target writes. */
export interface OciRuntimeConfig {
  ociVersion: string;
  process: {
    terminal: boolean;
    user: { uid: number; gid: number };
    args: string[];
    env: string[];
    cwd: string;
    capabilities: { bounding: string[]; effective: string[]; permitted: string[] };
    rlimits: { type: string; hard: number; soft: number }[];
    noNewPrivileges: boolean;
  };
  root: { path: string; readonly: boolean };
  hostname: string;
  mounts: { destination: string; type?: string; source: string; options?: string[] }[];
  annotations: Record<string, string>;
  linux: {
    namespaces: { type: string }[];
    cgroupsPath: string;
    resources: {
      devices: { allow: boolean; access?: string }[];
      memory?: { limit: number };
      cpu?: { quota: number; period: number };
      pids?: { limit: number };
    };
    maskedPaths: string[];
    readonlyPaths: string[];
  };
}

export interface BundleOptions {
  /** Container hostname (UTS namespace). */
  hostname: string;
  /** cgroup path for the runtime; relative paths nest under the runtime's own cgroup. */
  cgroupsPath: string;
  /** Owner labels and other annotations, visible in `runc state`. */
  annotations?: Readonly<Record<string, string>>;
}

export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
export const CFS_PERIOD_US = 100_000;

/** Docker's default capability set: enough for ordinary services, nothing administrative. */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_FSETID",
  "CAP_FOWNER",
  "CAP_MKNOD",
  "CAP_NET_RAW",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETFCAP",
  "CAP_SETPCAP",
  "CAP_NET_BIND_SERVICE",
  "CAP_SYS_CHROOT",
  "CAP_KILL",
  "CAP_AUDIT_WRITE",
];

/** Kernel files a container must not read or write (as runc's and Docker's defaults). */
export const MASKED_PATHS: readonly string[] = [
  "/proc/acpi",
  "/proc/asound",
  "/proc/kcore",
  "/proc/keys",
  "/proc/latency_stats",
  "/proc/timer_list",
  "/proc/timer_stats",
  "/proc/sched_debug",
  "/proc/scsi",
  "/sys/firmware",
];

export const READONLY_PATHS: readonly string[] = [
  "/proc/bus",
  "/proc/fs",
  "/proc/irq",
  "/proc/sys",
  "/proc/sysrq-trigger",
];

/** The OCI runtime config for `spec`. Applies every default the spec leaves out. */
export function buildRuntimeConfig(spec: OciSpec, options: BundleOptions): OciRuntimeConfig {
  const readonlyRootfs = spec.readonlyRootfs ?? true;
  const userMounts = (spec.mounts ?? []).map((m) => ({
    destination: m.destination,
    type: "bind",
    source: m.source,
    options: ["rbind", "rprivate", ...(m.readOnly ? ["ro"] : [])],
  }));
  const mounts = [...standardMounts()];
  // A read-only rootfs is shared by every service using it; /tmp must still be writable.
  if (readonlyRootfs && !userMounts.some((m) => m.destination === "/tmp")) {
    mounts.push({
      destination: "/tmp",
      type: "tmpfs",
      source: "tmpfs",
      options: ["nosuid", "nodev", "mode=1777"],
    });
  }
  mounts.push(...userMounts);

  return {
    ociVersion: "1.0.2",
    process: {
      terminal: false,
      user: { uid: spec.user?.uid ?? 0, gid: spec.user?.gid ?? 0 },
      args: [...spec.args],
      env: environment(spec.env),
      cwd: spec.cwd ?? "/",
      capabilities: {
        bounding: [...DEFAULT_CAPABILITIES],
        effective: [...DEFAULT_CAPABILITIES],
        permitted: [...DEFAULT_CAPABILITIES],
      },
      rlimits: [{ type: "RLIMIT_NOFILE", hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: spec.rootfs, readonly: readonlyRootfs },
    hostname: options.hostname,
    mounts,
    annotations: { ...(options.annotations ?? {}) },
    linux: {
      // A new network namespace with nothing in it but a down loopback: no network.
      namespaces: [{ type: "pid" }, { type: "network" }, { type: "ipc" }, { type: "uts" }, { type: "mount" }],
      cgroupsPath: options.cgroupsPath,
      resources: {
        devices: [{ allow: false, access: "rwm" }],
        ...cgroupLimits(spec),
      },
      maskedPaths: [...MASKED_PATHS],
      readonlyPaths: [...READONLY_PATHS],
    },
  };
}

function standardMounts(): OciRuntimeConfig["mounts"] {
  return [
    { destination: "/proc", type: "proc", source: "proc" },
    {
      destination: "/dev",
      type: "tmpfs",
      source: "tmpfs",
      options: ["nosuid", "strictatime", "mode=755", "size=65536k"],
    },
    {
      destination: "/dev/pts",
      type: "devpts",
      source: "devpts",
      options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"],
    },
    {
      destination: "/dev/shm",
      type: "tmpfs",
      source: "shm",
      options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
    },
    { destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"] },
    { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] },
    {
      destination: "/sys/fs/cgroup",
      type: "cgroup",
      source: "cgroup",
      options: ["nosuid", "noexec", "nodev", "relatime", "ro"],
    },
  ];
}

function environment(env: Readonly<Record<string, string>> | undefined): string[] {
  const vars: Record<string, string> = { PATH: DEFAULT_PATH, ...(env ?? {}) };
  return Object.entries(vars).map(([key, value]) => `${key}=${value}`);
}

function cgroupLimits(spec: OciSpec): Partial<OciRuntimeConfig["linux"]["resources"]> {
  const limits: Partial<OciRuntimeConfig["linux"]["resources"]> = {};
  const r = spec.resources;
  if (r?.memoryBytes !== undefined) limits.memory = { limit: r.memoryBytes };
  if (r?.cpus !== undefined) {
    limits.cpu = { quota: Math.max(1000, Math.round(r.cpus * CFS_PERIOD_US)), period: CFS_PERIOD_US };
  }
  if (r?.pids !== undefined) limits.pids = { limit: r.pids };
  return limits;
}
