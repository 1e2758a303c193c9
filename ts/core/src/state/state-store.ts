// The orchestrator's durable state: one SQLite database (WAL, synchronous=FULL) in the
// state directory. Every method commits before it returns, so whatever it acknowledges
// survives `kill -9` and power loss. One orchestrator per state directory: the
// connection holds an exclusive lock that the kernel drops if the process dies.
import { randomUUID } from "node:crypto";
import { chmodSync, closeSync, lstatSync, mkdirSync, openSync, statSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import type { ExitInfo, JsonValue, OwnedResource } from "../contract/types.js";
import { VmctlError } from "../errors.js";
import type { Readiness, ServicePhase } from "../orchestrator/api.js";
import { SqliteResourceLedger } from "./resource-ledger.js";
import { networkInfo } from "../network/service-network-info.js";
import { NetworkStore, type StoredLease, type StoredNetwork } from "./network-store.js";
import { migrate } from "./schema.js";
import { encodeExit, rowToService, type Lifecycle, type ServiceRow, type StoredService } from "./service-row.js";

export { DEFAULT_STATE_DIR } from "../contract/defaults.js";
export const DATABASE_FILE = "state.db";

export interface NewService {
  readonly id: string;
  readonly name: string;
  readonly target: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly spec: JsonValue;
  readonly dependsOn: readonly string[];
  readonly readiness?: Readiness;
  readonly requestId?: string;
  readonly requestHash?: string;
}

/** Fields of a service that change; `null` clears an optional field. */
export interface ServicePatch {
  readonly lifecycle?: Lifecycle;
  readonly phase?: ServicePhase;
  readonly exit?: ExitInfo | null;
  readonly pid?: number | null;
  readonly instance?: string | null;
  readonly addresses?: readonly string[];
  readonly ready?: boolean;
  readonly status?: string | null;
  readonly stopDeadline?: number | null;
}

export interface IntegrityReport {
  readonly ok: boolean;
  /** "ok", or each problem `PRAGMA integrity_check` / `foreign_key_check` found. */
  readonly messages: readonly string[];
}

/**
 * The state directory and database are the daemon's alone: specs may hold secrets (env
 * values). A directory made earlier with looser modes is tightened; the database is
 * created 0600 before SQLite opens it (SQLite gives its WAL file the same mode). A
 * directory owned by another user, or a symlink in place of the database, is refused.
 */
function makePrivate(stateDir: string, dbPath: string): void {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const owner = statSync(stateDir).uid;
  const me = process.geteuid?.() ?? owner;
  if (owner !== me) {
    // Whoever owns it could loosen its mode again whenever they like.
    throw new VmctlError("FAILED_PRECONDITION", `state directory ${stateDir} belongs to uid ${owner}, not to this user (uid ${me})`);
  }
  chmodSync(stateDir, 0o700);
  try {
    if (lstatSync(dbPath).isSymbolicLink()) {
      throw new VmctlError("FAILED_PRECONDITION", `state database ${dbPath} is a symbolic link; refusing to follow it`);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  closeSync(openSync(dbPath, "a", 0o600));
  chmodSync(dbPath, 0o600);
  for (const suffix of ["-wal", "-shm", "-journal"]) {
    try {
      chmodSync(`${dbPath}${suffix}`, 0o600);
    } catch {
      // not there: SQLite makes it later with the database's mode
    }
  }
}

export class StateStore {
  readonly #db: Database.Database;
  readonly #stmt;
  /** Networks and address leases (network-store.ts), in this database. */
  readonly networks: NetworkStore;
  /** This orchestrator installation's identity, persisted on first start (owner labels use it). */
  readonly instanceId: string;

  private constructor(
    db: Database.Database,
    readonly path: string,
  ) {
    this.#db = db;
    this.networks = new NetworkStore(db);
    this.#stmt = {
      insert: db.prepare(
        `INSERT INTO services (id, name, target, lifecycle, labels, spec, depends_on, readiness, phase, addresses, ready, created_at, updated_at, request_id, request_hash)
         VALUES (@id, @name, @target, 'creating', @labels, @spec, @depends_on, @readiness, 'created', '[]', 0, @now, @now, @request_id, @request_hash)`,
      ),
      update: db.prepare(
        `UPDATE services SET lifecycle = @lifecycle, phase = @phase, exit = @exit, pid = @pid, instance = @instance,
           addresses = @addresses, ready = @ready, status = @status, stop_deadline = @stop_deadline, updated_at = @updated_at WHERE id = @id`,
      ),
      byId: db.prepare<[string], ServiceRow>(`SELECT * FROM services WHERE id = ?`),
      byName: db.prepare<[string], ServiceRow>(`SELECT * FROM services WHERE name = ?`),
      byRequestId: db.prepare<[string], ServiceRow>(`SELECT * FROM services WHERE request_id = ?`),
      all: db.prepare<[], ServiceRow>(`SELECT * FROM services ORDER BY created_at, id`),
      remove: db.prepare<[string]>(`DELETE FROM services WHERE id = ?`),
      saveController: db.prepare(
        `INSERT INTO controllers (service_id, data, updated_at) VALUES (?, ?, ?)
         ON CONFLICT (service_id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at`,
      ),
      controller: db.prepare<[string], { data: string }>(`SELECT data FROM controllers WHERE service_id = ?`),
      getMeta: db.prepare<[string], { value: string }>(`SELECT value FROM meta WHERE key = ?`),
      setMeta: db.prepare(`INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)`),
    };
    this.#stmt.setMeta.run("instance_id", randomUUID());
    this.instanceId = (this.#stmt.getMeta.get("instance_id") as { value: string }).value;
  }

  /** Opens (creating and migrating as needed) the state database in `stateDir`. */
  static open(stateDir: string): StateStore {
    const path = join(stateDir, DATABASE_FILE);
    makePrivate(stateDir, path);
    const db = new Database(path, { timeout: 200 });
    try {
      // Exclusive locking first: the WAL index then lives in this process's memory, and
      // the lock taken below keeps a second orchestrator out until this one exits.
      db.pragma("locking_mode = EXCLUSIVE");
      db.pragma("journal_mode = WAL");
      db.pragma("synchronous = FULL");
      db.pragma("foreign_keys = ON");
      db.exec("BEGIN IMMEDIATE; COMMIT");
      migrate(db);
      return new StateStore(db, path);
    } catch (err) {
      db.close();
      if ((err as { code?: string }).code === "SQLITE_BUSY") {
        throw new VmctlError("UNAVAILABLE", `state directory ${stateDir} is in use by another vmctld`, { cause: err });
      }
      throw VmctlError.from(err, `opening state database ${path}`);
    }
  }

  /** Records a new service as "creating" (not yet acknowledged); its name is reserved from here on. */
  reserve(service: NewService): StoredService {
    try {
      this.#stmt.insert.run({
        id: service.id,
        name: service.name,
        target: service.target,
        labels: JSON.stringify(service.labels),
        spec: JSON.stringify(service.spec),
        depends_on: JSON.stringify(service.dependsOn),
        readiness: service.readiness === undefined ? null : JSON.stringify(service.readiness),
        request_id: service.requestId ?? null,
        request_hash: service.requestHash ?? null,
        now: Date.now(),
      });
    } catch (err) {
      if ((err as { code?: string }).code === "SQLITE_CONSTRAINT_UNIQUE" && String((err as Error).message).includes("request_id")) {
        throw new VmctlError("ALREADY_EXISTS", `requestId: ${service.requestId ?? ""} is already in use`, {
          cause: err,
          details: { field: "requestId" },
        });
      }
      if ((err as { code?: string }).code === "SQLITE_CONSTRAINT_UNIQUE") {
        throw new VmctlError("ALREADY_EXISTS", `a service named "${service.name}" already exists`, {
          cause: err,
          details: { field: "name" },
        });
      }
      throw err;
    }
    return this.get(service.id) as StoredService;
  }

  /** Applies `patch` and commits; returns the service as stored, or undefined if it is gone. */
  update(id: string, patch: ServicePatch): StoredService | undefined {
    return this.#db.transaction(() => {
      const row = this.#stmt.byId.get(id);
      if (row === undefined) return undefined;
      const next: ServiceRow = {
        ...row,
        lifecycle: patch.lifecycle ?? row.lifecycle,
        phase: patch.phase ?? row.phase,
        exit: patch.exit === undefined ? row.exit : patch.exit === null ? null : encodeExit(patch.exit),
        pid: patch.pid === undefined ? row.pid : patch.pid,
        instance: patch.instance === undefined ? row.instance : patch.instance,
        addresses: patch.addresses === undefined ? row.addresses : JSON.stringify(patch.addresses),
        ready: patch.ready === undefined ? row.ready : patch.ready ? 1 : 0,
        status: patch.status === undefined ? row.status : patch.status,
        stop_deadline: patch.stopDeadline === undefined ? row.stop_deadline : patch.stopDeadline,
        updated_at: Date.now(),
      };
      this.#stmt.update.run(next);
      return this.#service(next);
    }).immediate();
  }

  get(id: string): StoredService | undefined {
    const row = this.#stmt.byId.get(id);
    return row === undefined ? undefined : this.#service(row);
  }

  /** The row as a service, with its network lease (network-store.ts) when it has one. */
  #service(row: ServiceRow, leases?: ReadonlyMap<string, StoredLease>, networks?: ReadonlyMap<string, StoredNetwork>): StoredService {
    const service = rowToService(row);
    const lease = leases === undefined ? this.networks.leaseOf(row.id) : leases.get(row.id);
    if (lease === undefined) return service;
    const network = networks === undefined ? this.networks.network(lease.network) : networks.get(lease.network);
    return network === undefined ? service : { ...service, network: networkInfo(lease, network) };
  }

  /** The service a create with this idempotency key made, if it still exists. */
  findByRequestId(requestId: string): StoredService | undefined {
    const row = this.#stmt.byRequestId.get(requestId);
    return row === undefined ? undefined : this.#service(row);
  }

  /** By id, else by name. */
  find(ref: string): StoredService | undefined {
    const row = this.#stmt.byId.get(ref) ?? this.#stmt.byName.get(ref);
    return row === undefined ? undefined : this.#service(row);
  }

  /**
   * Services in creation order. Unacknowledged ("creating") ones only with `all`.
   * `where` sees the raw row, so callers can filter before JSON is parsed.
   */
  list(options: { all?: boolean; where?: (row: Readonly<ServiceRow>) => boolean } = {}): StoredService[] {
    const out: StoredService[] = [];
    // Read once for the whole list, not once per service.
    const leases = new Map(this.networks.leases().map((l) => [l.serviceId, l]));
    const networks = new Map(this.networks.networks().map((n) => [n.name, n]));
    for (const row of this.#stmt.all.all()) {
      if (!options.all && row.lifecycle === "creating") continue;
      if (options.where && !options.where(row)) continue;
      out.push(this.#service(row, leases, networks));
    }
    return out;
  }

  /** Forgets a service with its controller record and ledger. */
  remove(id: string): void {
    this.#stmt.remove.run(id);
  }

  saveControllerData(id: string, data: JsonValue): void {
    this.#stmt.saveController.run(id, JSON.stringify(data), Date.now());
  }

  controllerData(id: string): JsonValue | undefined {
    const row = this.#stmt.controller.get(id);
    return row === undefined ? undefined : (JSON.parse(row.data) as JsonValue);
  }

  /**
   * The connection itself, for stores that keep their tables in the same database and
   * commit in its transactions (the image index). Its settings are this store's.
   */
  get database(): Database.Database {
    return this.#db;
  }

  /** The durable resource ledger of one service. */
  ledger(id: string): SqliteResourceLedger {
    return new SqliteResourceLedger(this.#db, id);
  }

  resources(id: string): OwnedResource[] {
    return [...this.ledger(id).list()];
  }

  /** The durability settings in force, for diagnostics (`vmctl doctor`) and tests. */
  settings(): { journalMode: string; synchronous: "OFF" | "NORMAL" | "FULL" | "EXTRA"; lockingMode: string; schemaVersion: number } {
    const sync = this.#db.pragma("synchronous", { simple: true }) as number;
    return {
      journalMode: this.#db.pragma("journal_mode", { simple: true }) as string,
      synchronous: (["OFF", "NORMAL", "FULL", "EXTRA"] as const)[sync] ?? "OFF",
      lockingMode: this.#db.pragma("locking_mode", { simple: true }) as string,
      schemaVersion: this.#db.pragma("user_version", { simple: true }) as number,
    };
  }

  /** `PRAGMA integrity_check` and `foreign_key_check`. */
  integrityCheck(): IntegrityReport {
    const integrity = (this.#db.pragma("integrity_check") as { integrity_check: string }[]).map((r) => r.integrity_check);
    const foreign = (this.#db.pragma("foreign_key_check") as { table: string; rowid: number; parent: string }[]).map(
      (r) => `${r.table} row ${r.rowid} refers to a missing ${r.parent} row`,
    );
    const ok = integrity.length === 1 && integrity[0] === "ok" && foreign.length === 0;
    return { ok, messages: ok ? ["ok"] : [...integrity.filter((m) => m !== "ok"), ...foreign] };
  }

  close(): void {
    if (this.#db.open) this.#db.close();
  }
}
