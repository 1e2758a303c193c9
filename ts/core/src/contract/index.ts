// @vmctl/core/contract: what plugins and clients need — the target contract, the
// orchestrator API's data types and the error classes — without the engine, so
// importing it loads no SQLite and no other runtime dependency.
export { isErrorCode, ValidationError, VmctlError } from "../errors.js";
export type { ErrorCode, ErrorDetails } from "../errors.js";
export { CONTRACT_VERSION, SkipTarget } from "./plugin.js";
export { DEFAULT_SOCKET, DEFAULT_STATE_DIR, OWNER_LABEL, PID_FILE, SERVICE_LABEL, TARGET_LABEL } from "./defaults.js";
export { decodeLabel, decodeLabels, encodeLabel, labelEnvironment, labelledOwner, labelsFromEnvironment, serviceLabels } from "./owned.js";
export type { LabelledOwner, OwnedThing, PrunedThing, PruneTargetFailure, SystemPruneOptions, SystemPruneReport } from "./owned.js";
export { echo, entriesByKey, LABEL_KEY_PATTERN, LIMITS, NAME_PATTERN, SERVICE_ID_PATTERN } from "./limits.js";
export type { PluginEnvironment, PluginManifest, PluginRegistration, TargetRegistration } from "./plugin.js";
export { REQUIREMENT_KINDS } from "./requirements.js";
export type {
  BinaryRequirement,
  DeviceRequirement,
  FileRequirement,
  HostRequirement,
  RequirementBase,
  RequirementStatus,
  SocketRequirement,
} from "./requirements.js";
export type {
  ExecExit,
  ExecOutput,
  ExecProcess,
  ExecRequest,
  ExecResult,
  LogOptions,
  Logger,
  ResourceLedger,
  RunInput,
  ServiceController,
  ServiceFactory,
  ServiceNetwork,
  StopOptions,
  TargetContext,
  TerminalSize,
} from "./target.js";
export type {
  BindMount,
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
} from "./types.js";
export type {
  ImageAccess,
  ImageLayer,
  ImageRecord,
  ImageRunConfig,
  NativeImageApi,
  NativeImageProgress,
  PreparedImage,
  PrepareImageRequest,
  PullOptions,
} from "../images/types.js";
export type {
  CreateServiceInput,
  OrchestratorApi,
  Readiness,
  ReadinessCheck,
  RunShorthand,
  ServiceEvent,
  ServiceFilter,
  ServicePhase,
  ServiceRecord,
  ServiceRef,
  TargetInfo,
  CreateNetworkInput,
  NetworkRecord,
  ServiceNetworkInfo,
} from "../orchestrator/api.js";
export type {
  EgressPolicy,
  HostNetworkInventory,
  HostNetworkOps,
  NetworkAttachment,
  NetworkDefinition,
  PublishedPort,
  ServiceRules,
} from "../network/types.js";
export {
  checkDeviceName,
  checkMac,
  checkNetworkName,
  checkPolicy,
  checkPorts,
  DEFAULT_MTU,
  DEFAULT_NETWORK,
  formatPolicy,
  MAX_DEVICE_NAME_BYTES,
  NETWORK_LIMITS,
  NO_NETWORK,
  parsePolicy,
  parsePublish,
} from "../network/network-input.js";
export { canonicalCidr, cidrContains, cidrOverlaps, cidrSize, formatAddress, formatCidr, isAddress, networkOf, nthHost, parseAddress, parseCidr } from "../network/ipv4.js";
export type { Cidr } from "../network/ipv4.js";
