// Public, plain-data types of the VMM API. They mirror proto/vmm/v1/vmm.proto without
// exposing protobufjs classes, so callers never depend on generated code.

export interface KvmHost {
  readonly apiVersion: number;
  readonly irqchip: boolean;
  readonly userMemory: boolean;
  readonly ioeventfd: boolean;
  readonly irqfd: boolean;
  readonly maxVcpus: number;
  readonly recommendedVcpus: number;
  readonly pvm: boolean;
}

/**
 * The bounds a VMM checks its configuration against, published by the VMM itself (GetInfo,
 * `vmctl-vmm --limits`) from the constants it validates with: check against these, never
 * a copy of them.
 */
export interface VmmLimits {
  /** Most drives a VM may have. */
  readonly maxDrives: number;
  /** Drive.driveId: the whole id matches this (the VMM's rule, as an anchored RegExp). */
  readonly driveIdPattern: RegExp;
  /** Drive.driveId: at most this many characters (also in driveIdPattern). */
  readonly driveIdMaxLen: number;
  /** MachineConfig.vcpuCount: at most this many (the host's KVM may allow fewer: KvmHost.maxVcpus). */
  readonly maxVcpus: number;
  /** MachineConfig.memSizeMib: between these, inclusive. */
  readonly minMemMib: number;
  readonly maxMemMib: number;
  /** Vsock.guestCid: between these, inclusive (undefined from a VMM without vsock). */
  readonly minGuestCid?: number;
  readonly maxGuestCid?: number;
  /** Vsock.udsPath: at most this many bytes (UTF-8). */
  readonly udsPathMaxLen?: number;
  /** NetworkInterface.hostDevName: at most this many bytes (undefined from a VMM without networking). */
  readonly hostDevNameMaxLen?: number;
}

export interface VmmInfo {
  readonly version: string;
  readonly pid: number;
  readonly vmId: string;
  readonly kvm: KvmHost;
  /** Undefined from a VMM older than the limits (one an orchestrator adopts after an upgrade). */
  readonly limits?: VmmLimits;
}

export interface MachineConfig {
  /** 1..max vCPUs (default 1). */
  readonly vcpuCount?: number;
  /** Guest memory in MiB (default 128). */
  readonly memSizeMib?: number;
}

export interface BootSource {
  /** ELF vmlinux or bzImage on the host. */
  readonly kernelImagePath: string;
  readonly bootArgs?: string;
  readonly initrdPath?: string;
}

export interface Drive {
  readonly driveId: string;
  readonly pathOnHost: string;
  readonly isReadOnly?: boolean;
  readonly isRootDevice?: boolean;
}

/**
 * The VM's virtio-vsock device, host side on unix sockets: a host process connects to
 * `udsPath` and writes `CONNECT <guest port>\n` (answered `OK <host port>\n`); a guest
 * connection to host port N reaches a listener at `<udsPath>_N`.
 */
export interface Vsock {
  /** The guest's context id (VmmLimits.minGuestCid..maxGuestCid). */
  readonly guestCid: number;
  /** Made at Start, removed when the VM's run ends. */
  readonly udsPath: string;
}

/**
 * A virtio-net device on a TAP that already exists (the VMM attaches, it never creates):
 * named by `hostDevName` in the VMM's network namespace, or a descriptor the VMM process
 * inherited (`tapFd`) — exactly one of the two.
 */
export type NetworkInterface = {
  /** Unique in the VM; the drive id rule (VmmLimits.driveIdPattern). */
  readonly ifaceId: string;
  /** The guest's MAC, "02:00:00:00:00:01": unicast, not all zeros. */
  readonly guestMac: string;
} & ({ readonly hostDevName: string; readonly tapFd?: undefined } | { readonly hostDevName?: undefined; readonly tapFd: number });

export type Phase = "configuring" | "running" | "paused" | "exited";

export type ExitReason = "guest-exit" | "reset" | "shutdown" | "forced" | "kvm-error" | "vmm-error" | "unknown";

export interface VmExit {
  readonly reason: ExitReason;
  /** The guest's exit code for "guest-exit"; 0 otherwise. */
  readonly code: number;
  readonly detail: string;
}

export interface VmState {
  readonly phase: Phase;
  /** Present once phase is "exited". */
  readonly exit?: VmExit;
  readonly since: Date;
}

export interface BlockMetrics {
  readonly driveId: string;
  readonly readRequests: number;
  readonly writeRequests: number;
  readonly flushRequests: number;
  readonly readBytes: number;
  readonly writeBytes: number;
  readonly errors: number;
  readonly failed: boolean;
  /** Time the device model spent serving the queue, in µs. */
  readonly busyUs: number;
}

/** The vsock device's counters since Start. */
export interface VsockMetrics {
  /** Host-initiated connections the guest accepted. */
  readonly hostConnectionsOpened: number;
  /** Guest-initiated connections a host listener (`<udsPath>_N`) accepted. */
  readonly guestConnectionsOpened: number;
  readonly connectionsClosedByHost: number;
  readonly connectionsClosedByGuest: number;
  /** Connections the device reset (guest protocol violations, device reset). */
  readonly connectionsResetByDevice: number;
  /** Attempts refused: no host listener, the guest answered RST, a bad CONNECT line. */
  readonly connectionsRefused: number;
  /** Payload bytes into the guest, and out of it. */
  readonly bytesToGuest: number;
  readonly bytesFromGuest: number;
  readonly rxPackets: number;
  readonly txPackets: number;
  readonly packetsDropped: number;
  /** RST packets sent to the guest. */
  readonly rstsSent: number;
  /** The device stopped on a malformed queue until the driver resets it. */
  readonly failed: boolean;
}

/** One virtio-net device's counters since Start. Bytes are frame bytes (no virtio-net header). */
export interface NetMetrics {
  readonly ifaceId: string;
  /** Frames delivered to the guest, and their bytes. */
  readonly rxPackets: number;
  readonly rxBytes: number;
  /** Frames towards the guest lost (too large for its buffer, unusable buffers). */
  readonly rxDropped: number;
  /** Times reading the TAP paused for want of guest buffers (frames waited, not lost). */
  readonly rxNoBuffer: number;
  /** Frames the guest sent to the TAP, and their bytes. */
  readonly txPackets: number;
  readonly txBytes: number;
  /** Frames from the guest not sent (malformed, refused by the TAP). */
  readonly txDropped: number;
  /** Times the TAP would not take a frame yet (it waited, not lost). */
  readonly txWouldBlock: number;
  /** The device stopped on a malformed queue until the driver resets it. */
  readonly failed: boolean;
}

export interface Metrics {
  /** Start → the guest's boot-done write, in µs; undefined until it happens. */
  readonly bootDoneUs?: number;
  /** Start → vCPUs running, in µs. */
  readonly startToRunUs: number;
  /** VM exits handled by the VMM, by kind. */
  readonly vmExits: Readonly<Record<string, number>>;
  readonly block: readonly BlockMetrics[];
  readonly consoleBytesOut: number;
  /** Present once a VM with a vsock device has started. */
  readonly vsock?: VsockMetrics;
  /** One per network interface, once the VM has started. */
  readonly net: readonly NetMetrics[];
}
