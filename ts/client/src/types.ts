// The client speaks the orchestrator API's own types (from @vmctl/core/contract, which
// carries no runtime), so a client caller and the engine can never drift apart.
export type {
  Capabilities,
  CreateNetworkInput,
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
  TerminalSize,
  // How far a pull or a target's prepare has got; `item` is a layer's digest for per-layer phases.
  ProgressEvent,
  ImageRunConfig as ImageConfig,
  ImageLayer,
} from "@vmctl/core/contract";

/** What `create` takes: the engine's input, with the spec as JSON (it crosses the wire). */
export type { CreateServiceRequestInput as CreateServiceInput } from "@vmctl/proto";
// Images as the daemon's store reports them.
export type { Image, PrunedImages, RemovedImage } from "@vmctl/proto";
