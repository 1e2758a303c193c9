// @vmctl/client: a typed Node client for vmctld.
export { connect, DEFAULT_SOCKET, VmctlClient } from "./client.js";
export type { CallOptions } from "./client.js";
export { errorFromGrpc } from "./errors.js";
export { VmctlError } from "@vmctl/core/contract";
export type { ErrorCode, ErrorDetails } from "@vmctl/core/contract";
export type {
  Capabilities,
  CreateServiceInput,
  ExecResult,
  ExitInfo,
  JsonValue,
  LogChunk,
  LogStream,
  Phase,
  Readiness,
  ReadinessCheck,
  RunShorthand,
  ServiceEvent,
  ServiceFilter,
  ServicePhase,
  ServiceRecord,
  TargetInfo,
} from "./types.js";
