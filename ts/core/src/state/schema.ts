// The state schema, as an ordered list of migrations. `PRAGMA user_version` holds how
// many have been applied; each runs in the same transaction as its version bump.
import type Database from "better-sqlite3";
import { VmctlError } from "../errors.js";

/** Migration N (1-based) brings the schema from version N-1 to N. Append only. */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
  ) STRICT;

  -- One row per service. lifecycle: 'creating' until the create is acknowledged
  -- (such rows are not shown and are cleaned up by recovery), 'active', then
  -- 'deleting' once a delete has begun.
  CREATE TABLE services (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    target     TEXT NOT NULL,
    lifecycle  TEXT NOT NULL CHECK (lifecycle IN ('creating', 'active', 'deleting')),
    labels     TEXT NOT NULL,
    spec       TEXT NOT NULL,
    depends_on TEXT NOT NULL,
    readiness  TEXT,
    phase      TEXT NOT NULL,
    exit       TEXT,
    pid        INTEGER,
    instance   TEXT,
    addresses  TEXT NOT NULL,
    ready      INTEGER NOT NULL DEFAULT 0,
    status     TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX services_target ON services (target);
  CREATE INDEX services_phase ON services (phase);

  -- What each controller's record() returned last: handed back to adopt().
  CREATE TABLE controllers (
    service_id TEXT PRIMARY KEY REFERENCES services (id) ON DELETE CASCADE,
    data       TEXT NOT NULL,
    updated_at INTEGER NOT NULL
  ) STRICT;

  -- The resource ledger: what each service owns, written before it is made.
  CREATE TABLE resources (
    service_id TEXT NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    kind       TEXT NOT NULL,
    key        TEXT NOT NULL,
    data       TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (service_id, kind, key)
  ) STRICT;
  `,
  `
  -- Idempotent creates: the client's request id and a hash of its request, so a retry
  -- of an acknowledged create returns the same service and a different request with
  -- the same id is refused.
  ALTER TABLE services ADD COLUMN request_id TEXT;
  ALTER TABLE services ADD COLUMN request_hash TEXT;
  CREATE UNIQUE INDEX services_request_id ON services (request_id) WHERE request_id IS NOT NULL;
  -- When an interrupted stop must be forced (ms since the epoch): a restarted
  -- orchestrator finishes the stop it finds here.
  ALTER TABLE services ADD COLUMN stop_deadline INTEGER;
  `,
  `
  -- The image store's index (images/image-index.ts). A row is written only after the
  -- native engine has made the image's files, in one transaction with its blobs and
  -- references, so a half-made image is never visible; start-up recovery deletes files
  -- no row accounts for.
  CREATE TABLE images (
    digest        TEXT PRIMARY KEY,
    names         TEXT NOT NULL,
    config_digest TEXT NOT NULL,
    layers        TEXT NOT NULL,
    disk          TEXT NOT NULL,
    disk_bytes    INTEGER NOT NULL,
    config        TEXT NOT NULL,
    created       TEXT,
    pulled_at     INTEGER NOT NULL
  ) STRICT;

  -- Names (normalised references) → image. A re-pull that moves a tag moves its row.
  CREATE TABLE image_refs (
    reference TEXT PRIMARY KEY,
    digest    TEXT NOT NULL REFERENCES images (digest) ON DELETE CASCADE
  ) STRICT;
  CREATE INDEX image_refs_digest ON image_refs (digest);

  -- The blob files (sha256:…) each image holds in the store; a blob no row names is garbage.
  CREATE TABLE image_blobs (
    digest TEXT NOT NULL REFERENCES images (digest) ON DELETE CASCADE,
    blob   TEXT NOT NULL,
    PRIMARY KEY (digest, blob)
  ) STRICT;
  CREATE INDEX image_blobs_blob ON image_blobs (blob);

  -- Services using an image: they pin it (a used image's row cannot be deleted), and a
  -- service forgotten releases its uses with it.
  CREATE TABLE image_uses (
    service_id TEXT NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    digest     TEXT NOT NULL REFERENCES images (digest) ON DELETE RESTRICT,
    PRIMARY KEY (service_id, digest)
  ) STRICT;
  CREATE INDEX image_uses_digest ON image_uses (digest);
  `,
  `
  -- Networks (state/network-store.ts): one bridge and one subnet each; "default" is
  -- written on first use. A subnet is unique here; overlaps are refused before insert.
  CREATE TABLE networks (
    name       TEXT PRIMARY KEY,
    subnet     TEXT NOT NULL UNIQUE,
    gateway    TEXT NOT NULL,
    bridge     TEXT NOT NULL UNIQUE,
    dns        TEXT NOT NULL,
    policy     TEXT NOT NULL,
    created_at INTEGER NOT NULL
  ) STRICT;

  -- A service's place on a network: its address lease (never two alike on a network),
  -- its host device, published ports and own egress policy (NULL: the network's).
  -- Written before anything is made on the host; it goes with the service's row, and a
  -- network with leases cannot be deleted.
  CREATE TABLE network_leases (
    service_id  TEXT PRIMARY KEY REFERENCES services (id) ON DELETE CASCADE,
    network     TEXT NOT NULL REFERENCES networks (name) ON DELETE RESTRICT,
    address     TEXT NOT NULL,
    mac         TEXT NOT NULL,
    host_device TEXT NOT NULL UNIQUE,
    ports       TEXT NOT NULL,
    policy      TEXT,
    created_at  INTEGER NOT NULL,
    UNIQUE (network, address)
  ) STRICT;
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** Applies the migrations the database lacks; refuses a database from a newer schema. */
export function migrate(db: Database.Database): void {
  const current = db.pragma("user_version", { simple: true }) as number;
  if (current > SCHEMA_VERSION) {
    throw new VmctlError(
      "FAILED_PRECONDITION",
      `state database ${db.name} has schema version ${current}, newer than this vmctl knows (${SCHEMA_VERSION})`,
    );
  }
  for (let version = current + 1; version <= SCHEMA_VERSION; version++) {
    const sql = MIGRATIONS[version - 1] as string;
    db.transaction(() => {
      db.exec(sql);
      db.pragma(`user_version = ${version}`);
    })();
  }
}
