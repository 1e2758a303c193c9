// The client speaks the orchestrator API's own types (from @vmctl/core/contract, which
// carries no runtime), so a client caller and the engine can never drift apart.
import type { CreateServiceInput as EngineCreateInput, ImageLayer, ImageRunConfig, JsonValue } from "@vmctl/core/contract";

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
  // How far a pull or a target's prepare has got; `item` is a layer's digest for per-layer phases.
  ProgressEvent,
  ImageRunConfig as ImageConfig,
  ImageLayer,
} from "@vmctl/core/contract";

/** What `create` takes: the engine's input, with the spec as JSON (it crosses the wire). */
export interface CreateServiceInput extends Omit<EngineCreateInput, "spec"> {
  readonly spec?: { readonly [key: string]: JsonValue };
}


/** An image in the daemon's store. */
export interface Image {
  /** The manifest's digest (`sha256:…`): the image's identity. */
  readonly digest: string;
  /** Every reference naming it; empty when dangling. */
  readonly references: readonly string[];
  readonly configDigest: string;
  readonly config: ImageRunConfig;
  readonly layers: readonly ImageLayer[];
  /** Size of its read-only base disk. */
  readonly diskBytes: number;
  readonly pulledAt: Date;
  /** Ids of the services using it. */
  readonly usedBy: readonly string[];
  /** When the image says it was built. */
  readonly created?: Date;
}

export interface RemovedImage {
  readonly untagged: readonly string[];
  readonly deleted: readonly string[];
}

export interface PrunedImages {
  readonly removed: readonly string[];
  readonly reclaimedBytes: number;
}
