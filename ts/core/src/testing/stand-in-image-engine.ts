// A STAND-IN for the native image engine (@vmctl/native), for testing the image STORE's
// logic only: the index, recovery, name moves, remove/prune, pinning, concurrency. It
// fetches nothing, verifies nothing and builds no ext4: it writes real files in the
// engine's documented layout — blob files named by the real sha256 of their bytes
// (layers, config, manifest), a `disks/<hex>.ext4` file (not a file system) — staged in
// `tmp/` and renamed into place, so recovery and pruning act on real files. Do not use
// it to test anything about images themselves.
import { createHash, randomUUID } from "node:crypto";
import { mkdir, rename, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { normaliseReference } from "../images/reference.js";
import type { ImageRunConfig, NativeImageApi, NativeImageProgress, PreparedImage, PrepareImageRequest } from "../images/types.js";

export interface StandInImage {
  /** Each layer's bytes (as text); equal contents make equal blobs, shared between images. */
  readonly layers: readonly string[];
  readonly config?: Partial<ImageRunConfig>;
  /** Names the engine reports; default: the source, normalised. */
  readonly names?: readonly string[];
}

/** A point a pull can be held at, for concurrency and crash tests. */
export type StandInHoldPoint = "after-blobs" | "after-disk";

function sha256(data: string): string {
  return createHash("sha256").update(data).digest("hex");
}

const LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip";

export class StandInImageEngine implements NativeImageApi {
  /** Every prepareImage request, in order. */
  readonly requests: PrepareImageRequest[] = [];
  readonly writableLayers: string[] = [];
  /** Pulls in flight now, and the most at once. */
  inFlight = 0;
  maxInFlight = 0;
  readonly #catalog = new Map<string, StandInImage>();
  readonly #failures = new Map<string, unknown>();
  readonly #holds = new Map<string, { point: StandInHoldPoint; reached: () => void; release: Promise<void> }>();

  /** `source` (exactly as it will be asked for) now names `image`; publishing again moves it. */
  publish(source: string, image: StandInImage): this {
    this.#catalog.set(source, image);
    return this;
  }

  /** The next pull of `source` throws `error` (after reporting one progress event). */
  failNext(source: string, error: unknown): this {
    this.#failures.set(source, error);
    return this;
  }

  /**
   * The next pull of `source` stops at `point` until the returned `release` is called;
   * `reached` resolves when it gets there.
   */
  hold(source: string, point: StandInHoldPoint): { reached: Promise<void>; release: () => void } {
    let release!: () => void;
    let reached!: () => void;
    const reachedPromise = new Promise<void>((resolve) => (reached = resolve));
    const releasePromise = new Promise<void>((resolve) => (release = resolve));
    this.#holds.set(source, { point, reached, release: releasePromise });
    return { reached: reachedPromise, release };
  }

  /** The digest `image` gets (its manifest's sha256), without writing anything. */
  static digestOf(image: StandInImage): string {
    return `sha256:${sha256(StandInImageEngine.#manifest(image).manifest)}`;
  }

  async prepareImage(request: PrepareImageRequest, onProgress: (event: NativeImageProgress) => void): Promise<PreparedImage> {
    this.requests.push(request);
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      return await this.#prepare(request, onProgress);
    } finally {
      this.inFlight -= 1;
    }
  }

  async createWritableLayer(request: { readonly storeDir: string; readonly path: string; readonly sizeBytes: number }): Promise<void> {
    this.writableLayers.push(request.path);
    await writeFile(request.path, "");
  }

  async #prepare(request: PrepareImageRequest, onProgress: (event: NativeImageProgress) => void): Promise<PreparedImage> {
    onProgress({ phase: "resolve", layer: "", current: 0, total: 1 });
    // Yield, as a real engine talking to a registry would.
    await new Promise((resolve) => setImmediate(resolve));
    const failure = this.#failures.get(request.source);
    if (failure !== undefined) {
      this.#failures.delete(request.source);
      throw failure;
    }
    const image = this.#catalog.get(request.source);
    if (image === undefined) throw Object.assign(new Error(`manifest unknown: ${request.source}`), { code: "NOT_FOUND" });

    const blobs = join(request.storeDir, "blobs", "sha256");
    const tmp = join(request.storeDir, "tmp");
    const disks = join(request.storeDir, "disks");
    await Promise.all([mkdir(blobs, { recursive: true }), mkdir(tmp, { recursive: true }), mkdir(disks, { recursive: true })]);

    const { manifest, config, layers } = StandInImageEngine.#manifest(image);
    for (const [i, content] of image.layers.entries()) {
      const layer = layers[i] as { digest: string; size: number };
      const existed = await this.#writeBlob(request.storeDir, content);
      onProgress({ phase: existed ? "exists" : "download", layer: layer.digest, current: layer.size, total: layer.size });
      onProgress({ phase: "unpack", layer: layer.digest, current: 1, total: 1 });
    }
    await this.#writeBlob(request.storeDir, config);
    await this.#writeBlob(request.storeDir, manifest);
    const hex = sha256(manifest);
    await this.#maybeHold(request.source, "after-blobs");

    const disk = join(disks, `${hex}.ext4`);
    const staged = join(tmp, `disk-${randomUUID()}`);
    await writeFile(staged, `stand-in disk of sha256:${hex}\n`.repeat(256));
    await rename(staged, disk);
    onProgress({ phase: "mkfs", layer: "", current: 1, total: 1 });
    await this.#maybeHold(request.source, "after-disk");
    onProgress({ phase: "done", layer: "", current: 1, total: 1 });

    const typed = normaliseReference(request.source);
    return {
      digest: `sha256:${hex}`,
      names: image.names ?? (typed === undefined ? [] : [typed]),
      configDigest: `sha256:${sha256(config)}`,
      layers: layers.map((l) => ({ ...l, mediaType: LAYER_MEDIA_TYPE })),
      blobs: [`sha256:${hex}`, `sha256:${sha256(config)}`, ...layers.map((l) => l.digest)],
      disk,
      diskBytes: (await stat(disk)).size,
      config: {
        entrypoint: [],
        cmd: ["/bin/sh"],
        env: ["PATH=/usr/bin:/bin"],
        workingDir: "/",
        user: "",
        labels: {},
        ...image.config,
      },
      created: "2024-01-01T00:00:00Z",
    };
  }

  static #manifest(image: StandInImage): { manifest: string; config: string; layers: { digest: string; size: number }[] } {
    const layers = image.layers.map((content) => ({ digest: `sha256:${sha256(content)}`, size: Buffer.byteLength(content) }));
    const config = JSON.stringify({ config: image.config ?? {}, rootfs: { diff_ids: layers.map((l) => l.digest) } });
    const manifest = JSON.stringify({ schemaVersion: 2, config: `sha256:${sha256(config)}`, layers });
    return { manifest, config, layers };
  }

  /** Writes a blob through tmp/ and a rename, as the engine does; true when it was there already. */
  async #writeBlob(storeDir: string, content: string): Promise<boolean> {
    const path = join(storeDir, "blobs", "sha256", sha256(content));
    try {
      await stat(path);
      return true;
    } catch {
      const staged = join(storeDir, "tmp", `blob-${randomUUID()}`);
      await writeFile(staged, content);
      await rename(staged, path);
      return false;
    }
  }

  async #maybeHold(source: string, point: StandInHoldPoint): Promise<void> {
    const hold = this.#holds.get(source);
    if (hold === undefined || hold.point !== point) return;
    this.#holds.delete(source);
    hold.reached();
    await hold.release;
  }
}
