// The image store's types: what the native image engine (@vmctl/native, Rust) does for
// one image, and what the orchestrator keeps and shows of the images it holds.
import type { ProgressSink } from "../contract/types.js";
import type { ReferenceOptions } from "./reference.js";

/** The OCI image config fields a workload is run with (`vmctl image inspect`). */
export interface ImageRunConfig {
  readonly entrypoint: readonly string[];
  readonly cmd: readonly string[];
  /** `NAME=value` strings, in image order. */
  readonly env: readonly string[];
  readonly workingDir: string;
  readonly user: string;
  readonly labels: Readonly<Record<string, string>>;
}

export interface ImageLayer {
  readonly digest: string;
  /** Compressed size in bytes, as in the manifest. */
  readonly size: number;
  readonly mediaType: string;
}

/** What the native engine answers once an image's base disk exists. */
export interface PreparedImage {
  /** The image manifest's digest (`sha256:…`): the image's identity. */
  readonly digest: string;
  /** Normalised names the source gave it (`docker.io/library/node:20`); may be empty. */
  readonly names: readonly string[];
  readonly configDigest: string;
  readonly layers: readonly ImageLayer[];
  /** Every blob file the image holds in the store (manifests, config, layers). */
  readonly blobs: readonly string[];
  /** The read-only ext4 base disk (absolute path) and its size in bytes. */
  readonly disk: string;
  readonly diskBytes: number;
  readonly config: ImageRunConfig;
  /** The image's creation time from its config (RFC 3339), when it says. */
  readonly created?: string;
}

/** One progress report of the native engine, per layer where it applies. */
export interface NativeImageProgress {
  /** "resolve" | "download" | "exists" | "verify" | "unpack" | "mkfs" | "done" */
  readonly phase: string;
  /** The layer's digest for per-layer phases; empty for whole-image phases. */
  readonly layer: string;
  readonly current: number;
  readonly total: number;
}

export interface PrepareImageRequest {
  /** The image store's root directory (`<stateDir>/images`). */
  readonly storeDir: string;
  /**
   * What to prepare: a registry reference (`node:20`, `127.0.0.1:5000/app@sha256:…`,
   * optionally `docker://`-prefixed), `docker-archive:PATH[:NAME]` or `oci:PATH[:TAG]`.
   */
  readonly source: string;
  /** Registries (`host:port`) spoken to over plain HTTP; loopback ones always are. */
  readonly insecureRegistries?: readonly string[];
  /** Docker client config with registry credentials; default `~/.docker/config.json`. */
  readonly dockerConfig?: string;
  /** Per-request network timeout. */
  readonly timeoutMs?: number;
}

/**
 * Errors from the native engine carry `code`: "NOT_FOUND" (no such image or tag),
 * "INVALID_ARGUMENT" (bad reference, bad archive, tar entry escaping the tree, no
 * linux/amd64 in the index), "UNAUTHENTICATED" / "PERMISSION_DENIED" (registry 401/403),
 * "UNAVAILABLE" (registry unreachable, 5xx, timeout), "FAILED_PRECONDITION" (the host's file system
 * cannot hold the image), "DATA_LOSS" (digest mismatch,
 * truncated or corrupt layer), "RESOURCE_EXHAUSTED" (disk full), "INTERNAL".
 */
export interface NativeImageApi {
  prepareImage(request: PrepareImageRequest, onProgress: (event: NativeImageProgress) => void): Promise<PreparedImage>;
  /** A fresh, empty, sparse ext4 disk of `sizeBytes` at `path`, in at most a few ms. */
  createWritableLayer(request: { readonly storeDir: string; readonly path: string; readonly sizeBytes: number }): Promise<void>;
}

/** An image the store holds, as listed and inspected. */
export interface ImageRecord extends PreparedImage {
  /** Every name (reference) pointing at this image; empty when dangling. */
  readonly references: readonly string[];
  readonly pulledAt: Date;
  /** Ids of services using the image (they pin it against rmi and prune). */
  readonly usedBy: readonly string[];
}

/** What a target gets to use images (TargetContext.images). */
export interface ImageAccess {
  /**
   * The local image for `reference`, pulled first when absent (with progress), recorded
   * as used by this service until the service is forgotten.
   */
  use(reference: string, progress?: ProgressSink): Promise<ImageRecord>;
  /** A fresh writable disk for this service (see NativeImageApi.createWritableLayer). */
  createWritableLayer(path: string, sizeBytes: number): Promise<void>;
}

export interface PullOptions extends ReferenceOptions {
  readonly progress?: ProgressSink;
}
