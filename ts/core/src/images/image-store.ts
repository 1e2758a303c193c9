// The image store: OCI images as read-only base disks, one per manifest digest, under
// `<storeDir>`. The native engine (@vmctl/native) fetches, verifies and unpacks and
// writes the files; this store decides what is kept. Its index lives in the
// orchestrator's database (image-index.ts) and is written in one transaction only after
// the engine's files are complete, so a crash at any point leaves either a whole image or
// files that recover() deletes.
//
// Concurrency: pulls of one reference run one after another (a KeyedLock); pulls of
// different references run at once, sharing the store's lock; removal and pruning take
// that lock alone, so no file is deleted under an engine call in flight.
import { isAbsolute } from "node:path";
import type { Logger } from "../contract/target.js";
import type { ProgressEvent, ProgressSink } from "../contract/types.js";
import { ValidationError, VmctlError } from "../errors.js";
import { KeyedLock } from "../orchestrator/keyed-lock.js";
import type Database from "better-sqlite3";
import { ImageIndex } from "./image-index.js";
import { nativeImageError } from "./native-errors.js";
import {
  checkReference,
  digestPrefix,
  DIGEST_PATTERN,
  engineSource,
  IMAGE_FIELD,
  isArchiveSource,
  normaliseReference,
  pinnedDigest,
  shown,
  type ReferenceOptions,
} from "./reference.js";
import { SharedExclusiveLock } from "./shared-exclusive-lock.js";
import { blobDigest, blobPath, exists, makeStoreDir, removePath, storeLayout, type StoreLayout } from "./store-files.js";
import { recoverStore, sweepUnheld, type ImageRecoveryReport } from "./store-recovery.js";
import type { ImageAccess, ImageRecord, NativeImageApi, NativeImageProgress, PreparedImage, PullOptions } from "./types.js";

export interface ImageStoreOptions {
  /** `<stateDir>/images`. */
  readonly storeDir: string;
  /** The orchestrator's state database (migrated: it holds the image tables and `services`). */
  readonly db: Database.Database;
  /** The image engine; without one, pulls (and so `use` of an absent image) fail with FAILED_PRECONDITION. */
  readonly native?: NativeImageApi;
  readonly log: Logger;
  /** Registries (`host:port`) spoken to over plain HTTP. */
  readonly insecureRegistries?: readonly string[];
}

export interface RemoveImageOptions extends ReferenceOptions {
  /** Remove the name even from an image a service uses (the image and its disk stay). */
  readonly force?: boolean;
}

export interface RemoveImageResult {
  /** Names removed. */
  readonly untagged: readonly string[];
  /** Digests of images deleted (their disk, row and blobs no other image holds). */
  readonly deleted: readonly string[];
  readonly reclaimedBytes: number;
}

export interface PruneOptions {
  /** Every image no service uses, named or not; default only dangling (nameless) ones. */
  readonly all?: boolean;
}

export interface PruneResult {
  /** Digests of images deleted. */
  readonly removed: readonly string[];
  /** Bytes freed: their disks, and every blob (and disk) file no image holds. */
  readonly reclaimedBytes: number;
}

/** What a reference found in the index: the image, and the name it matched, if it matched one. */
interface Found {
  readonly digest: string;
  readonly name?: string;
}

export const NO_IMAGE_ENGINE = "this vmctld has no image engine";

export class ImageStore {
  readonly storeDir: string;
  readonly #layout: StoreLayout;
  readonly #index: ImageIndex;
  readonly #native: NativeImageApi | undefined;
  readonly #log: Logger;
  readonly #insecureRegistries: readonly string[] | undefined;
  readonly #pulls = new KeyedLock();
  readonly #lock = new SharedExclusiveLock();

  constructor(options: ImageStoreOptions) {
    this.#layout = storeLayout(options.storeDir);
    this.storeDir = this.#layout.root;
    this.#index = new ImageIndex(options.db);
    this.#native = options.native;
    this.#log = options.log;
    this.#insecureRegistries = options.insecureRegistries;
  }

  /** True when an image engine was given (pulls can work). */
  get hasEngine(): boolean {
    return this.#native !== undefined;
  }

  /**
   * Start-up: empties `tmp/`, drops index rows whose disk is gone (with their names and
   * uses), deletes disks and blobs no row holds. Logs what it cleaned.
   */
  async recover(): Promise<ImageRecoveryReport> {
    return this.#lock.exclusive(async () => {
      await makeStoreDir(this.#layout);
      return recoverStore(this.#layout, this.#index, this.#log);
    });
  }

  /**
   * Fetches (or imports) `reference` through the engine and records it, whatever the
   * index holds already: a tag that now names another digest moves to it (the image it
   * named before stays, dangling if it has no names left). Progress is per layer
   * (`item` = the layer's digest). Errors about the reference name `options.field`.
   */
  async pull(reference: string, options: PullOptions = {}): Promise<ImageRecord> {
    const field = options.field ?? IMAGE_FIELD;
    checkReference(reference, field);
    this.#pullable(reference, field);
    return this.#pulls.run(this.#key(reference), () => this.#lock.shared(async () => this.#recordPull(reference, options.progress, field)));
  }

  /**
   * The local image `reference` names — a name (`node:20`, normalised), a digest
   * (`sha256:…`), a unique digest prefix of ≥ 12 hex digits, or `name@sha256:…` of an
   * image held — else pulled now.
   */
  async resolve(reference: string, progress?: ProgressSink, options: ReferenceOptions = {}): Promise<ImageRecord> {
    return this.#obtain(reference, progress, options.field ?? IMAGE_FIELD);
  }

  /** The image `reference` names in the index, without pulling; undefined when none. */
  find(reference: string, options: ReferenceOptions = {}): ImageRecord | undefined {
    const field = options.field ?? IMAGE_FIELD;
    checkReference(reference, field);
    const found = this.#find(reference, field);
    return found === undefined ? undefined : this.#index.get(found.digest);
  }

  /** Every image held, newest pull first. */
  list(): ImageRecord[] {
    return this.#index.list();
  }

  /** The image `reference` names; NOT_FOUND naming the reference (and `options.field`) when there is none. */
  inspect(reference: string, options: ReferenceOptions = {}): ImageRecord {
    const record = this.find(reference, options);
    if (record === undefined) throw this.#notFound(reference, options.field ?? IMAGE_FIELD);
    return record;
  }

  /**
   * Removes a name (or, by digest, every name of the image). An image left with no names
   * and no users is deleted: its disk, its row and the blobs no other image holds. An
   * image used by a service keeps at least one name unless `force` (then it stays,
   * nameless and pinned: its disk is never deleted while used).
   */
  async remove(reference: string, options: RemoveImageOptions = {}): Promise<RemoveImageResult> {
    const field = options.field ?? IMAGE_FIELD;
    checkReference(reference, field);
    return this.#lock.exclusive(async () => {
      const found = this.#find(reference, field);
      if (found === undefined) throw this.#notFound(reference, field);
      const names = found.name === undefined ? this.#index.references(found.digest) : [found.name];
      const { untagged, deleted, refused } = this.#index.untag(found.digest, names, { refuseIfPinned: options.force !== true });
      if (refused !== undefined) {
        throw new VmctlError(
          "FAILED_PRECONDITION",
          `image ${shown(reference)} (${refused.digest}) is used by service${refused.services.length === 1 ? "" : "s"} ` +
            `${refused.services.join(", ")}; delete ${refused.services.length === 1 ? "it" : "them"} first, or remove with force ` +
            `(the name goes, the image stays while used)`,
          { details: { field } },
        );
      }
      let reclaimedBytes = 0;
      if (deleted !== undefined) reclaimedBytes = await this.#deleteFiles(deleted);
      this.#log.info("image removed", { reference, digest: found.digest, untagged, deleted: deleted !== undefined, reclaimedBytes });
      return { untagged, deleted: deleted === undefined ? [] : [deleted.digest], reclaimedBytes };
    });
  }

  /**
   * Deletes dangling images (no names, no users) — with `all`, every image no service
   * uses — then every blob and disk file no image holds.
   */
  async prune(options: PruneOptions = {}): Promise<PruneResult> {
    return this.#lock.exclusive(async () => {
      const deleted = this.#index.deleteUnused({ named: options.all === true });
      let reclaimedBytes = 0;
      for (const image of deleted) reclaimedBytes += await removePath(image.disk);
      reclaimedBytes += (await sweepUnheld(this.#layout, this.#index)).reclaimedBytes;
      const removed = deleted.map((image) => image.digest);
      this.#log.info("images pruned", { all: options.all === true, removed, reclaimedBytes });
      return { removed, reclaimedBytes };
    });
  }

  /** `resolve`, then records the image as used by the service (it pins it against remove and prune). */
  async use(serviceId: string, reference: string, progress?: ProgressSink, options: ReferenceOptions = {}): Promise<ImageRecord> {
    return this.#obtain(reference, progress, options.field ?? IMAGE_FIELD, serviceId);
  }

  /** Forgets every image use of the service (its images stay; they are just no longer pinned). */
  release(serviceId: string): void {
    this.#index.releaseUses(serviceId);
  }

  /**
   * The ImageAccess of one service (TargetContext.images). Its errors about a reference
   * name `options.field`, by default `image`: the spec field a target takes it from.
   */
  access(serviceId: string, options: ReferenceOptions = {}): ImageAccess {
    return {
      use: (reference, progress) => this.use(serviceId, reference, progress, options),
      createWritableLayer: (path, sizeBytes) => this.createWritableLayer(path, sizeBytes),
    };
  }

  /** A fresh, empty, sparse ext4 disk of `sizeBytes` at `path` (absolute). */
  async createWritableLayer(path: string, sizeBytes: number): Promise<void> {
    if (typeof path !== "string" || !isAbsolute(path) || path.includes("\0")) {
      throw new ValidationError("path", "must be an absolute path");
    }
    if (!Number.isSafeInteger(sizeBytes) || sizeBytes <= 0) throw new ValidationError("sizeBytes", "must be a positive whole number of bytes");
    const native = this.#engine();
    try {
      await native.createWritableLayer({ storeDir: this.storeDir, path, sizeBytes });
    } catch (err) {
      // The engine refuses a size (not whole MiB, under 16 MiB) or a path (already there).
      const field = /disk size|sizeBytes/.test(err instanceof Error ? err.message : String(err)) ? "sizeBytes" : "path";
      throw nativeImageError(err, `creating a writable layer at ${path}`, field);
    }
  }

  // ---- internals ------------------------------------------------------------------

  /** The image for `reference`, from the index or pulled; pinned for `serviceId` when given. */
  async #obtain(reference: string, progress: ProgressSink | undefined, field: string, serviceId?: string): Promise<ImageRecord> {
    checkReference(reference, field);
    // A local hit is pinned in the same tick it is found: no removal can come between.
    const local = this.#find(reference, field);
    if (local !== undefined) return this.#pinned(local.digest, serviceId);
    this.#pullable(reference, field);
    return this.#pulls.run(this.#key(reference), () =>
      this.#lock.shared(async () => {
        // A pull of the same reference that finished while this one waited answers it.
        const again = this.#find(reference, field);
        if (again !== undefined) return this.#pinned(again.digest, serviceId);
        const pulled = await this.#recordPull(reference, progress, field);
        // Still under the shared lock: nothing can have removed it since it was recorded.
        return this.#pinned(pulled.digest, serviceId);
      }),
    );
  }

  #pinned(digest: string, serviceId: string | undefined): ImageRecord {
    if (serviceId !== undefined) {
      try {
        this.#index.addUse(serviceId, digest);
      } catch (err) {
        if ((err as { code?: string }).code === "SQLITE_CONSTRAINT_FOREIGNKEY") {
          throw new VmctlError("NOT_FOUND", `no service ${serviceId} to use image ${digest}`, { cause: err, details: { serviceId } });
        }
        throw err;
      }
    }
    const record = this.#index.get(digest);
    if (record === undefined) throw new VmctlError("INTERNAL", `image ${digest} vanished from the index`);
    return record;
  }

  /** Runs the engine for `reference` and records what it made. Call under the shared lock. */
  async #recordPull(reference: string, progress: ProgressSink | undefined, field: string): Promise<ImageRecord> {
    const native = this.#engine();
    const action = `pulling ${shown(reference)}`;
    let prepared: PreparedImage;
    try {
      prepared = await native.prepareImage(
        {
          storeDir: this.storeDir,
          source: engineSource(reference),
          ...(this.#insecureRegistries === undefined ? {} : { insecureRegistries: this.#insecureRegistries }),
        },
        (event) => report(progress, event),
      );
    } catch (err) {
      throw nativeImageError(err, action, field);
    }
    const blobs = await this.#checkPrepared(prepared, action);
    const typed = normaliseReference(reference);
    const names = [...new Set([...prepared.names.filter((name) => this.#acceptableName(name, reference)), ...(typed === undefined ? [] : [typed])])];
    const { moved } = this.#index.record(prepared, blobs, names, Date.now());
    for (const [name, from] of moved) this.#log.info("image name moved", { name, from, to: prepared.digest });
    this.#log.info("image pulled", { reference, digest: prepared.digest, names });
    return this.#index.get(prepared.digest) as ImageRecord;
  }

  /** What the engine answered, checked before it is recorded; returns its blobs as digests. */
  async #checkPrepared(prepared: PreparedImage, action: string): Promise<string[]> {
    const broken = (what: string): VmctlError => new VmctlError("INTERNAL", `${action}: the image engine answered ${what}`);
    if (typeof prepared?.digest !== "string" || !DIGEST_PATTERN.test(prepared.digest)) throw broken(`a bad digest (${String(prepared?.digest)})`);
    if (typeof prepared.disk !== "string" || !isAbsolute(prepared.disk)) throw broken(`a bad disk path (${String(prepared.disk)})`);
    if (!(await exists(prepared.disk))) throw broken(`image ${prepared.digest} but its disk ${prepared.disk} does not exist`);
    const blobs: string[] = [];
    for (const entry of prepared.blobs) {
      const digest = blobDigest(this.#layout, entry);
      if (digest === undefined) {
        this.#log.warn("image engine listed a blob outside the store's layout; ignored", { digest: prepared.digest, blob: entry });
        continue;
      }
      blobs.push(digest);
    }
    return blobs;
  }

  /** A name from the engine is recorded only if it is one a user could type back. */
  #acceptableName(name: string, reference: string): boolean {
    try {
      checkReference(name);
      return true;
    } catch {
      this.#log.warn("image engine gave an unusable name; ignored", { reference, name: String(name).slice(0, 200) });
      return false;
    }
  }

  /** Looks a reference up in the index (see resolve); an ambiguous digest prefix is INVALID_ARGUMENT naming `field`. */
  #find(reference: string, field: string): Found | undefined {
    if (DIGEST_PATTERN.test(reference)) return this.#index.has(reference) ? { digest: reference } : undefined;
    const prefix = digestPrefix(reference);
    if (prefix !== undefined) {
      const matches = this.#index.digestsWithPrefix(`sha256:${prefix.hex}`);
      if (matches.length > 1) {
        throw new VmctlError("INVALID_ARGUMENT", `${field}: ${shown(reference)} matches several images; give more of the digest`, {
          details: { field },
        });
      }
      if (matches.length === 1) return { digest: matches[0] as string };
      if (prefix.explicit) return undefined;
      // Otherwise a name that happens to be hex (docker allows it): looked up as a name.
    }
    if (isArchiveSource(reference)) return undefined;
    const normalised = normaliseReference(reference);
    for (const name of normalised === undefined ? [reference] : [normalised, reference]) {
      const digest = this.#index.digestOf(name);
      if (digest !== undefined) return { digest, name };
    }
    const pinned = pinnedDigest(reference);
    if (pinned !== undefined && this.#index.has(pinned)) return { digest: pinned };
    return undefined;
  }

  /** Refuses what cannot be pulled: without an engine anything; a bare digest always. */
  #pullable(reference: string, field: string): void {
    if (digestPrefix(reference)?.explicit) {
      throw new VmctlError("NOT_FOUND", `no image ${shown(reference)} here, and a digest alone cannot be pulled: name the repository (name@sha256:…)`, {
        details: { field },
      });
    }
    this.#engine();
  }

  #engine(): NativeImageApi {
    if (this.#native === undefined) throw new VmctlError("FAILED_PRECONDITION", NO_IMAGE_ENGINE);
    return this.#native;
  }

  /** Pulls of one image name run one after another, however it was spelt. */
  #key(reference: string): string {
    return normaliseReference(reference) ?? reference;
  }

  #notFound(reference: string, field: string): VmctlError {
    return new VmctlError("NOT_FOUND", `no image ${shown(reference)}`, { details: { field } });
  }

  /** Deletes a deleted image's disk and the blobs it held that no other image holds. */
  async #deleteFiles(image: ImageRecord): Promise<number> {
    let bytes = await removePath(image.disk);
    for (const blob of image.blobs) {
      if (!this.#index.blobHeld(blob)) bytes += await removePath(blobPath(this.#layout, blob));
    }
    return bytes;
  }
}

/** An engine progress report as the contract's event; a failing sink never fails the pull. */
function report(progress: ProgressSink | undefined, event: NativeImageProgress): void {
  if (progress === undefined) return;
  const mapped: ProgressEvent = {
    phase: event.phase,
    current: event.current,
    total: event.total,
    ...(event.layer === "" ? {} : { item: event.layer }),
  };
  try {
    progress(mapped);
  } catch {
    // The watcher went away; the pull goes on.
  }
}
