// The image store's index in the orchestrator's SQLite database (tables from schema.ts
// migration 3): images, their names (image_refs), the blob files each holds
// (image_blobs) and the services using them (image_uses). Every change is one
// transaction; files are the store's business, not this module's.
import type Database from "better-sqlite3";
import type { ImageLayer, ImageRecord, ImageRunConfig, PreparedImage } from "./types.js";

interface ImageRow {
  digest: string;
  names: string;
  config_digest: string;
  layers: string;
  disk: string;
  disk_bytes: number;
  config: string;
  created: string | null;
  pulled_at: number;
}

/** What became of the names a recorded image was given. */
export interface RecordedNames {
  /** Names that pointed at another image before and point at this one now: name → old digest. */
  readonly moved: ReadonlyMap<string, string>;
}

/** Why an image could not be deleted: the services (their names) using it. */
export interface ImageInUse {
  readonly digest: string;
  readonly services: readonly string[];
}

export class ImageIndex {
  readonly #db: Database.Database;
  readonly #stmt;

  constructor(db: Database.Database) {
    this.#db = db;
    this.#stmt = {
      upsertImage: db.prepare(
        `INSERT INTO images (digest, names, config_digest, layers, disk, disk_bytes, config, created, pulled_at)
         VALUES (@digest, @names, @config_digest, @layers, @disk, @disk_bytes, @config, @created, @pulled_at)
         ON CONFLICT (digest) DO UPDATE SET names = excluded.names, config_digest = excluded.config_digest, layers = excluded.layers,
           disk = excluded.disk, disk_bytes = excluded.disk_bytes, config = excluded.config, created = excluded.created, pulled_at = excluded.pulled_at`,
      ),
      clearBlobs: db.prepare<[string]>(`DELETE FROM image_blobs WHERE digest = ?`),
      addBlob: db.prepare<[string, string]>(`INSERT OR IGNORE INTO image_blobs (digest, blob) VALUES (?, ?)`),
      refDigest: db.prepare<[string], { digest: string }>(`SELECT digest FROM image_refs WHERE reference = ?`),
      setRef: db.prepare<[string, string]>(
        `INSERT INTO image_refs (reference, digest) VALUES (?, ?) ON CONFLICT (reference) DO UPDATE SET digest = excluded.digest`,
      ),
      removeRef: db.prepare<[string]>(`DELETE FROM image_refs WHERE reference = ?`),
      image: db.prepare<[string], ImageRow>(`SELECT * FROM images WHERE digest = ?`),
      images: db.prepare<[], ImageRow>(`SELECT * FROM images ORDER BY pulled_at DESC, digest`),
      // Prefixes are `sha256:` and hex digits only (reference.ts): no LIKE wildcards in them.
      withPrefix: db.prepare<[string], { digest: string }>(`SELECT digest FROM images WHERE digest LIKE ? LIMIT 2`),
      refsOf: db.prepare<[string], { reference: string }>(`SELECT reference FROM image_refs WHERE digest = ? ORDER BY reference`),
      blobsOf: db.prepare<[string], { blob: string }>(`SELECT blob FROM image_blobs WHERE digest = ? ORDER BY rowid`),
      usesOf: db.prepare<[string], { service_id: string }>(`SELECT service_id FROM image_uses WHERE digest = ? ORDER BY service_id`),
      userNames: db.prepare<[string], { name: string }>(
        `SELECT coalesce(s.name, u.service_id) AS name FROM image_uses u LEFT JOIN services s ON s.id = u.service_id
         WHERE u.digest = ? ORDER BY name`,
      ),
      addUse: db.prepare<[string, string]>(`INSERT OR IGNORE INTO image_uses (service_id, digest) VALUES (?, ?)`),
      releaseUses: db.prepare<[string]>(`DELETE FROM image_uses WHERE service_id = ?`),
      dropUses: db.prepare<[string]>(`DELETE FROM image_uses WHERE digest = ?`),
      deleteImage: db.prepare<[string]>(`DELETE FROM images WHERE digest = ?`),
      blobHeld: db.prepare<[string], { one: number }>(`SELECT 1 AS one FROM image_blobs WHERE blob = ? LIMIT 1`),
      allBlobs: db.prepare<[], { blob: string }>(`SELECT DISTINCT blob FROM image_blobs`),
      unused: db.prepare<[], { digest: string }>(
        `SELECT digest FROM images i WHERE NOT EXISTS (SELECT 1 FROM image_uses u WHERE u.digest = i.digest) ORDER BY digest`,
      ),
      dangling: db.prepare<[], { digest: string }>(
        `SELECT digest FROM images i WHERE NOT EXISTS (SELECT 1 FROM image_uses u WHERE u.digest = i.digest)
           AND NOT EXISTS (SELECT 1 FROM image_refs r WHERE r.digest = i.digest) ORDER BY digest`,
      ),
    };
  }

  /**
   * Records an image the engine has finished, with its blobs and the names given it, in
   * one transaction: either all of it is visible or none. Names already held by another
   * image move to this one (the other stays, dangling if it has no names left).
   */
  record(image: PreparedImage, blobs: readonly string[], names: readonly string[], pulledAt: number): RecordedNames {
    return this.#db.transaction((): RecordedNames => {
      this.#stmt.upsertImage.run({
        digest: image.digest,
        names: JSON.stringify(image.names),
        config_digest: image.configDigest,
        layers: JSON.stringify(image.layers),
        disk: image.disk,
        disk_bytes: image.diskBytes,
        config: JSON.stringify(image.config),
        created: image.created ?? null,
        pulled_at: pulledAt,
      });
      this.#stmt.clearBlobs.run(image.digest);
      for (const blob of blobs) this.#stmt.addBlob.run(image.digest, blob);
      const moved = new Map<string, string>();
      for (const name of names) {
        const before = this.#stmt.refDigest.get(name)?.digest;
        if (before !== undefined && before !== image.digest) moved.set(name, before);
        this.#stmt.setRef.run(name, image.digest);
      }
      return { moved };
    }).immediate();
  }

  has(digest: string): boolean {
    return this.#stmt.image.get(digest) !== undefined;
  }

  /** The digest a name points at. */
  digestOf(reference: string): string | undefined {
    return this.#stmt.refDigest.get(reference)?.digest;
  }

  /** Up to two digests starting with `prefix` (`sha256:…`): one means it is unique. */
  digestsWithPrefix(prefix: string): string[] {
    if (!/^sha256:[0-9a-f]*$/.test(prefix)) return [];
    return this.#stmt.withPrefix.all(`${prefix}%`).map((r) => r.digest);
  }

  get(digest: string): ImageRecord | undefined {
    const row = this.#stmt.image.get(digest);
    return row === undefined ? undefined : this.#toRecord(row);
  }

  list(): ImageRecord[] {
    return this.#stmt.images.all().map((row) => this.#toRecord(row));
  }

  references(digest: string): string[] {
    return this.#stmt.refsOf.all(digest).map((r) => r.reference);
  }

  /**
   * Marks the image as used by the service. The service must exist (image_uses refers to
   * services), and so must the image: both checked by the database.
   */
  addUse(serviceId: string, digest: string): void {
    this.#stmt.addUse.run(serviceId, digest);
  }

  /** Forgets every use of the service; returns how many there were. */
  releaseUses(serviceId: string): number {
    return this.#stmt.releaseUses.run(serviceId).changes;
  }

  /**
   * In one transaction: drops `names` from the image, then deletes the image itself if it
   * is left with no names and no users (`deleteIfUnused`). With `refuseIfPinned`, an image
   * in use that would be left with no names is refused instead (nothing changes).
   */
  untag(
    digest: string,
    names: readonly string[],
    options: { readonly refuseIfPinned: boolean },
  ): { readonly untagged: readonly string[]; readonly deleted?: ImageRecord; readonly refused?: ImageInUse } {
    return this.#db.transaction(() => {
      const left = this.references(digest).filter((r) => !names.includes(r));
      const users = this.#stmt.userNames.all(digest).map((r) => r.name);
      if (options.refuseIfPinned && users.length > 0 && left.length === 0) return { untagged: [], refused: { digest, services: users } };
      const untagged = names.filter((name) => this.#stmt.removeRef.run(name).changes > 0);
      if (users.length > 0 || left.length > 0) return { untagged };
      const deleted = this.get(digest);
      this.#stmt.deleteImage.run(digest);
      return deleted === undefined ? { untagged } : { untagged, deleted };
    }).immediate();
  }

  /** In one transaction: deletes every image no service uses, and (unless `named`) that has no names. */
  deleteUnused(options: { readonly named: boolean }): ImageRecord[] {
    return this.#db.transaction(() => {
      const digests = (options.named ? this.#stmt.unused : this.#stmt.dangling).all().map((r) => r.digest);
      const deleted: ImageRecord[] = [];
      for (const digest of digests) {
        const record = this.get(digest);
        if (record !== undefined) deleted.push(record);
        this.#stmt.deleteImage.run(digest);
      }
      return deleted;
    }).immediate();
  }

  /** Deletes an image whatever holds it (its disk is gone): its names, blobs and uses go with it. */
  forget(digest: string): { readonly names: readonly string[]; readonly services: readonly string[] } {
    return this.#db.transaction(() => {
      const names = this.references(digest);
      const services = this.#stmt.userNames.all(digest).map((r) => r.name);
      this.#stmt.dropUses.run(digest);
      this.#stmt.deleteImage.run(digest);
      return { names, services };
    }).immediate();
  }

  /** True when some image holds the blob. */
  blobHeld(blob: string): boolean {
    return this.#stmt.blobHeld.get(blob) !== undefined;
  }

  /** Every blob some image holds. */
  heldBlobs(): Set<string> {
    return new Set(this.#stmt.allBlobs.all().map((r) => r.blob));
  }

  #toRecord(row: ImageRow): ImageRecord {
    const created = row.created === null ? {} : { created: row.created };
    return {
      digest: row.digest,
      names: JSON.parse(row.names) as string[],
      configDigest: row.config_digest,
      layers: JSON.parse(row.layers) as ImageLayer[],
      blobs: this.#stmt.blobsOf.all(row.digest).map((r) => r.blob),
      disk: row.disk,
      diskBytes: row.disk_bytes,
      config: JSON.parse(row.config) as ImageRunConfig,
      ...created,
      references: this.references(row.digest),
      pulledAt: new Date(row.pulled_at),
      usedBy: this.#stmt.usesOf.all(row.digest).map((r) => r.service_id),
    };
  }
}
