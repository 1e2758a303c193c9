// Conversions between the generated protobuf messages and the public plain types.
import { vmm } from "@vmctl/proto";
import type {
  BlockMetrics,
  BootSource,
  Drive,
  ExitReason,
  MachineConfig,
  Metrics,
  NetMetrics,
  NetworkInterface,
  Phase,
  VmmInfo,
  VmmLimits,
  VmState,
  Vsock,
  VsockMetrics,
} from "./types.js";

import pb = vmm.v1;

const PHASES: Readonly<Record<number, Phase>> = {
  [pb.Phase.PHASE_CONFIGURING]: "configuring",
  [pb.Phase.PHASE_RUNNING]: "running",
  [pb.Phase.PHASE_PAUSED]: "paused",
  [pb.Phase.PHASE_EXITED]: "exited",
};

const EXIT_REASONS: Readonly<Record<number, ExitReason>> = {
  [pb.ExitReason.EXIT_REASON_GUEST_EXIT]: "guest-exit",
  [pb.ExitReason.EXIT_REASON_RESET]: "reset",
  [pb.ExitReason.EXIT_REASON_SHUTDOWN]: "shutdown",
  [pb.ExitReason.EXIT_REASON_FORCED]: "forced",
  [pb.ExitReason.EXIT_REASON_KVM_ERROR]: "kvm-error",
  [pb.ExitReason.EXIT_REASON_VMM_ERROR]: "vmm-error",
};

export function vmStateFromProto(m: pb.IVmState): VmState {
  const phase = PHASES[m.phase ?? 0];
  if (phase === undefined) throw new Error(`VMM sent an unknown phase ${m.phase}`);
  const since = new Date(Number(m.sinceUnixMs ?? 0));
  if (phase !== "exited") return { phase, since };
  return {
    phase,
    since,
    exit: {
      reason: EXIT_REASONS[m.exitReason ?? 0] ?? "unknown",
      code: m.exitCode ?? 0,
      detail: m.exitDetail ?? "",
    },
  };
}

export function vmmInfoFromProto(m: pb.IVmmInfo): VmmInfo {
  const k = m.kvm ?? {};
  return {
    version: m.version ?? "",
    pid: m.pid ?? 0,
    vmId: m.vmId ?? "",
    kvm: {
      apiVersion: k.apiVersion ?? 0,
      irqchip: k.irqchip ?? false,
      userMemory: k.userMemory ?? false,
      ioeventfd: k.ioeventfd ?? false,
      irqfd: k.irqfd ?? false,
      maxVcpus: k.maxVcpus ?? 0,
      recommendedVcpus: k.recommendedVcpus ?? 0,
      pvm: k.pvm ?? false,
    },
    ...withLimits(m.limits),
  };
}

/** GetInfo's limits, left out when there are none or they do not read (a pattern this RegExp cannot take): GetInfo still answers. */
function withLimits(m: pb.ILimits | null | undefined): { limits?: VmmLimits } {
  try {
    const limits = limitsFromProto(m);
    return limits === undefined ? {} : { limits };
  } catch {
    return {};
  }
}

/** The VMM's limits, from GetInfo or `vmctl-vmm --limits` (the same message); undefined when it published none. */
export function limitsFromProto(m: pb.ILimits | null | undefined): VmmLimits | undefined {
  if (!m?.driveIdPattern || !m.maxDrives) return undefined;
  return {
    maxDrives: m.maxDrives,
    driveIdPattern: new RegExp(m.driveIdPattern, "u"),
    driveIdMaxLen: m.driveIdMaxLen ?? 0,
    maxVcpus: m.maxVcpus ?? 0,
    minMemMib: m.minMemMib ?? 0,
    maxMemMib: m.maxMemMib ?? 0,
    ...(m.maxGuestCid ? { minGuestCid: m.minGuestCid ?? 0, maxGuestCid: m.maxGuestCid } : {}),
    ...(m.udsPathMaxLen ? { udsPathMaxLen: m.udsPathMaxLen } : {}),
    ...(m.hostDevNameMaxLen ? { hostDevNameMaxLen: m.hostDevNameMaxLen } : {}),
  };
}

export const machineConfigToProto = (c: MachineConfig): pb.IMachineConfig => ({
  vcpuCount: c.vcpuCount ?? 0,
  memSizeMib: c.memSizeMib ?? 0,
});

export const machineConfigFromProto = (m: pb.IMachineConfig): Required<MachineConfig> => ({
  vcpuCount: m.vcpuCount ?? 0,
  memSizeMib: m.memSizeMib ?? 0,
});

export const bootSourceToProto = (b: BootSource): pb.IBootSource => ({
  kernelImagePath: b.kernelImagePath,
  bootArgs: b.bootArgs ?? "",
  initrdPath: b.initrdPath ?? "",
});

export const bootSourceFromProto = (m: pb.IBootSource): BootSource => ({
  kernelImagePath: m.kernelImagePath ?? "",
  bootArgs: m.bootArgs ?? "",
  ...(m.initrdPath ? { initrdPath: m.initrdPath } : {}),
});

export const driveToProto = (d: Drive): pb.IDrive => ({
  driveId: d.driveId,
  pathOnHost: d.pathOnHost,
  isReadOnly: d.isReadOnly ?? false,
  isRootDevice: d.isRootDevice ?? false,
});

export const driveFromProto = (m: pb.IDrive): Required<Drive> => ({
  driveId: m.driveId ?? "",
  pathOnHost: m.pathOnHost ?? "",
  isReadOnly: m.isReadOnly ?? false,
  isRootDevice: m.isRootDevice ?? false,
});

export const vsockToProto = (v: Vsock): pb.IVsock => ({
  guestCid: v.guestCid,
  udsPath: v.udsPath,
});

export const vsockFromProto = (m: pb.IVsock): Vsock => ({
  guestCid: Number(m.guestCid ?? 0),
  udsPath: m.udsPath ?? "",
});

export const networkInterfaceToProto = (n: NetworkInterface): pb.INetworkInterface => ({
  ifaceId: n.ifaceId,
  hostDevName: n.hostDevName ?? "",
  guestMac: n.guestMac,
  ...(n.tapFd !== undefined ? { tapFd: n.tapFd } : {}),
});

export const networkInterfaceFromProto = (m: pb.INetworkInterface): NetworkInterface => {
  const common = { ifaceId: m.ifaceId ?? "", guestMac: m.guestMac ?? "" };
  return m.tapFd !== undefined && m.tapFd !== null ? { ...common, tapFd: m.tapFd } : { ...common, hostDevName: m.hostDevName ?? "" };
};

const netMetricsFromProto = (m: pb.INetMetrics): NetMetrics => ({
  ifaceId: m.ifaceId ?? "",
  rxPackets: Number(m.rxPackets ?? 0),
  rxBytes: Number(m.rxBytes ?? 0),
  rxDropped: Number(m.rxDropped ?? 0),
  rxNoBuffer: Number(m.rxNoBuffer ?? 0),
  txPackets: Number(m.txPackets ?? 0),
  txBytes: Number(m.txBytes ?? 0),
  txDropped: Number(m.txDropped ?? 0),
  txWouldBlock: Number(m.txWouldBlock ?? 0),
  failed: m.failed ?? false,
});

const vsockMetricsFromProto = (m: pb.IVsockMetrics): VsockMetrics => ({
  hostConnectionsOpened: Number(m.hostConnectionsOpened ?? 0),
  guestConnectionsOpened: Number(m.guestConnectionsOpened ?? 0),
  connectionsClosedByHost: Number(m.connectionsClosedByHost ?? 0),
  connectionsClosedByGuest: Number(m.connectionsClosedByGuest ?? 0),
  connectionsResetByDevice: Number(m.connectionsResetByDevice ?? 0),
  connectionsRefused: Number(m.connectionsRefused ?? 0),
  bytesToGuest: Number(m.bytesToGuest ?? 0),
  bytesFromGuest: Number(m.bytesFromGuest ?? 0),
  rxPackets: Number(m.rxPackets ?? 0),
  txPackets: Number(m.txPackets ?? 0),
  packetsDropped: Number(m.packetsDropped ?? 0),
  rstsSent: Number(m.rstsSent ?? 0),
  failed: m.failed ?? false,
});

const blockMetricsFromProto = (m: pb.IBlockMetrics): BlockMetrics => ({
  driveId: m.driveId ?? "",
  readRequests: Number(m.readRequests ?? 0),
  writeRequests: Number(m.writeRequests ?? 0),
  flushRequests: Number(m.flushRequests ?? 0),
  readBytes: Number(m.readBytes ?? 0),
  writeBytes: Number(m.writeBytes ?? 0),
  errors: Number(m.errors ?? 0),
  failed: m.failed ?? false,
  busyUs: Number(m.busyUs ?? 0),
});

export function metricsFromProto(m: pb.IMetrics): Metrics {
  const vmExits: Record<string, number> = {};
  for (const [kind, count] of Object.entries(m.vmExits ?? {})) vmExits[kind] = Number(count);
  const bootDone = Number(m.bootDoneUs ?? 0);
  return {
    ...(bootDone > 0 ? { bootDoneUs: bootDone } : {}),
    startToRunUs: Number(m.startToRunUs ?? 0),
    vmExits,
    block: (m.block ?? []).map(blockMetricsFromProto),
    consoleBytesOut: Number(m.consoleBytesOut ?? 0),
    ...(m.vsock ? { vsock: vsockMetricsFromProto(m.vsock) } : {}),
    net: (m.net ?? []).map(netMetricsFromProto),
  };
}
