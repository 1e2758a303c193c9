// Which image a service runs: a local reference (never pulled: the daemon must have it),
// or an archive loaded with `docker load` through the API. Loaded images are left on the
// daemon (other services may share them; the user can `docker rmi` them).
import { createReadStream, statSync } from "node:fs";
import { VmctlError, type ErrorDetails } from "@vmctl/core/contract";
import type { DockerEngine } from "./engine.js";
import type { DockerSpec } from "./spec.js";

export interface ResolvedImage {
  /** The image id the container is created from. */
  readonly id: string;
  /** What the spec named: the reference, or the archive path. */
  readonly source: string;
  /** For an archive: the tags `docker load` reported (empty for an untagged archive). */
  readonly loadedTags?: readonly string[];
}

export class ImageResolver {
  readonly #engine: DockerEngine;
  /** Archives already loaded by this factory (path + size + mtime → image id). */
  readonly #loaded = new Map<string, { id: string; tags: readonly string[] }>();

  constructor(engine: DockerEngine) {
    this.#engine = engine;
  }

  /** The local image `reference`, or NOT_FOUND naming spec.image (the target never pulls). */
  async local(reference: string, details: ErrorDetails = {}): Promise<ResolvedImage> {
    const image = await this.#engine.image(reference);
    if (!image) {
      throw new VmctlError(
        "NOT_FOUND",
        `spec.image: image ${reference} is not present on the Docker daemon at ${this.#engine.socket} (the docker target does not pull: docker pull or docker load it first, or give spec.imageArchive)`,
        { details: { ...details, field: "spec.image" } },
      );
    }
    return { id: image.id, source: reference };
  }

  /** The image of `spec`: a local one, or its archive loaded (once per archive version). */
  async resolve(spec: DockerSpec, details: ErrorDetails = {}): Promise<ResolvedImage> {
    if (spec.image !== undefined) return this.local(spec.image, details);
    const path = spec.imageArchive as string;
    const field = { ...details, field: "spec.imageArchive" };
    let version: string;
    try {
      const st = statSync(path);
      version = `${path}\0${st.size}\0${st.mtimeMs}`;
    } catch (err) {
      throw new VmctlError("NOT_FOUND", `spec.imageArchive: ${path} no longer exists`, { cause: err, details: field });
    }
    const known = this.#loaded.get(version);
    if (known && (await this.#engine.image(known.id))) return { id: known.id, source: path, loadedTags: known.tags };

    let loaded: { tags: string[]; ids: string[] };
    try {
      loaded = await this.#engine.load(createReadStream(path));
    } catch (err) {
      const e = this.#engine.error(err, "docker load");
      if (e.code === "UNAVAILABLE" || e.code === "PERMISSION_DENIED") throw e;
      throw new VmctlError("INVALID_ARGUMENT", `spec.imageArchive: ${path} could not be loaded as a docker archive: ${e.message}`, { cause: err, details: field });
    }
    const first = loaded.tags[0] ?? loaded.ids[0];
    const image = first === undefined ? undefined : await this.#engine.image(first);
    if (!image) {
      throw new VmctlError("INVALID_ARGUMENT", `spec.imageArchive: docker load of ${path} reported no image`, { details: field });
    }
    this.#loaded.set(version, { id: image.id, tags: loaded.tags });
    return { id: image.id, source: path, loadedTags: loaded.tags };
  }
}
