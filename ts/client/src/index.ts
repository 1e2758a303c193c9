// @vmctl/client: a typed Node client for vmctld.
export { connect, DEFAULT_SOCKET, VmctlClient } from "./client.js";
export type { CallOptions, ProgressCallOptions } from "./client.js";
export { errorFromGrpc } from "./errors.js";
export { VmctlError } from "@vmctl/core/contract";
export type { ErrorCode, ErrorDetails } from "@vmctl/core/contract";
export type {
  Capabilities,
  CreateNetworkInput,
  CreateServiceInput,
  EgressPolicy,
  NetworkRecord,
  PublishedPort,
  ServiceNetworkInfo,
  ExecExit,
  ExecOutput,
  ExecProcess,
  ExecRequest,
  ExecResult,
  ExitInfo,
  Image,
  ImageConfig,
  ImageLayer,
  JsonValue,
  LogChunk,
  LogStream,
  Phase,
  ProgressEvent,
  PrunedImages,
  Readiness,
  ReadinessCheck,
  RemovedImage,
  RunShorthand,
  ServiceEvent,
  ServiceFilter,
  ServicePhase,
  ServiceRecord,
  TargetInfo,
  TerminalSize,
} from "./types.js";
