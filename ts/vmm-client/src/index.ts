// @vmctl/vmm-client: drive a vmctl-vmm process from Node.
export { VmmClient } from "./client.js";
export type { CallOptions, ConsoleSession } from "./client.js";
export { VmmError } from "./errors.js";
export type { VmmErrorCode } from "./errors.js";
export { findVmmBinary, requireVmmBinary } from "./binary.js";
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
  Phase,
  VmExit,
  VmmInfo,
  VmState,
} from "./types.js";
