// @vmctl/vmm-client: drive a vmctl-vmm process from Node. Failures are VmctlError
// (@vmctl/core/contract); fromGrpc is the grpc-js → VmctlError mapping.
export { LOCAL_SOCKET_CHANNEL_OPTIONS, VmmClient } from "./client.js";
export type { CallOptions, ConsoleSession } from "./client.js";
export { fromGrpc } from "./errors.js";
export { readVmmLimits } from "./limits.js";
export { checkoutVmmBinary, checkoutVmmBuilds, findVmmBinary, requireVmmBinary } from "./binary.js";
export { connectVsock, relayVsock } from "./hybrid-vsock.js";
export type { VsockConnection, VsockConnectOptions, VsockRelay } from "./hybrid-vsock.js";
export { VmmProcess } from "./process.js";
export type { SpawnVmmOptions } from "./process.js";
export type {
  BlockMetrics,
  BootSource,
  Drive,
  ExitReason,
  KvmHost,
  MachineConfig,
  Metrics,
  NetMetrics,
  NetworkInterface,
  Phase,
  VmExit,
  VmmInfo,
  VmmLimits,
  VmState,
  Vsock,
  VsockMetrics,
} from "./types.js";
