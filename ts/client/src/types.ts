// The client speaks the orchestrator API's own types (from @vmctl/core/contract, which
// carries no runtime), so a client caller and the engine can never drift apart.
import type { CreateServiceInput as EngineCreateInput, JsonValue } from "@vmctl/core/contract";

export type {
  Capabilities,
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
} from "@vmctl/core/contract";

/** What `create` takes: the engine's input, with the spec as JSON (it crosses the wire). */
export interface CreateServiceInput extends Omit<EngineCreateInput, "spec"> {
  readonly spec?: { readonly [key: string]: JsonValue };
}
