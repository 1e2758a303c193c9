// @vmctl/core: the target contract, errors, and the orchestrator engine.
export { ValidationError, VmctlError } from "./errors.js";
export type { ErrorCode, ErrorDetails } from "./errors.js";
export { CONTRACT_VERSION } from "./contract/plugin.js";
export type { PluginEnvironment, PluginManifest, PluginRegistration, TargetRegistration } from "./contract/plugin.js";
export type {
  ExecResult,
  LogOptions,
  Logger,
  ResourceLedger,
  ServiceController,
  ServiceFactory,
  StopOptions,
  TargetContext,
} from "./contract/target.js";
export type {
  Capabilities,
  ControllerRecord,
  ExitInfo,
  JsonValue,
  LogChunk,
  LogStream,
  OwnedResource,
  Phase,
  ProgressEvent,
  ProgressSink,
  ServiceState,
} from "./contract/types.js";
export type {
  CreateServiceInput,
  OrchestratorApi,
  Readiness,
  ReadinessCheck,
  ServiceEvent,
  ServiceFilter,
  ServicePhase,
  ServiceRecord,
  ServiceRef,
  TargetInfo,
} from "./orchestrator/api.js";
