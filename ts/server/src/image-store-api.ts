// What vmctld needs of the engine beyond OrchestratorApi: the image store
// (`orchestrator.images`) and a create that reports its target's progress. Written
// against the ImageStore API of @vmctl/core (src/images/), described here structurally
// so the server compiles before that store lands and whatever implements it (the real
// store, a test's fake) fits. Only the fields the server sends on the wire are named.
import type { CreateServiceInput, ImageLayer, ImageRunConfig, OrchestratorApi, ProgressEvent, ProgressSink, ServiceRecord, SystemPruneOptions, SystemPruneReport } from "@vmctl/core";

export type ItemProgressEvent = ProgressEvent;
export type ItemProgressSink = ProgressSink;

/** The image fields vmctld sends (ImageRecord of @vmctl/core has these and more). */
export interface ImageRecordView {
  readonly digest: string;
  readonly references: readonly string[];
  readonly configDigest: string;
  readonly layers: readonly ImageLayer[];
  readonly diskBytes: number;
  readonly config: ImageRunConfig;
  /** RFC 3339, when the image config says. */
  readonly created?: string;
  readonly pulledAt: Date;
  readonly usedBy: readonly string[];
}

/**
 * The image store's methods vmctld calls (ImageStore of @vmctl/core). `field` is the
 * request field the reference came in: the store's errors about it name that field.
 */
export interface ImageStoreApi {
  pull(reference: string, options?: { progress?: ItemProgressSink; field?: string }): Promise<ImageRecordView>;
  resolve(reference: string, progress?: ItemProgressSink, options?: { field?: string }): Promise<ImageRecordView>;
  list(): readonly ImageRecordView[];
  /** VmctlError NOT_FOUND when the store has no such image. */
  inspect(reference: string, options?: { field?: string }): ImageRecordView;
  remove(reference: string, options?: { force?: boolean; field?: string }): Promise<{ readonly untagged: readonly string[]; readonly deleted: readonly string[] }>;
  prune(options?: { all?: boolean }): Promise<{ readonly removed: readonly string[]; readonly reclaimedBytes: number }>;
}

/** The engine as vmctld serves it: the Orchestrator of @vmctl/core fits. */
export interface ServedEngine extends Omit<OrchestratorApi, "create"> {
  create(input: CreateServiceInput, options?: { progress?: ItemProgressSink }): Promise<ServiceRecord>;
  /** Absent on an engine without an image store: the image methods answer UNIMPLEMENTED. */
  readonly images?: ImageStoreApi;
  /** `vmctl system prune` (Orchestrator.prune); absent: PruneSystem answers UNIMPLEMENTED. */
  prune?(options: SystemPruneOptions): Promise<SystemPruneReport>;
}
