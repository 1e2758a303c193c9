// ResourceLedger on the state database: each call is its own committed transaction, so
// `intend` is on disk before the target goes on to make the resource.
import type Database from "better-sqlite3";
import type { ResourceLedger } from "../contract/target.js";
import type { JsonValue, OwnedResource } from "../contract/types.js";
import { VmctlError } from "../errors.js";

interface ResourceRow {
  kind: string;
  key: string;
  data: string | null;
}

interface LedgerStatements {
  intend: Database.Statement<[string, string, string, string | null, number]>;
  release: Database.Statement<[string, string, string]>;
  list: Database.Statement<[string], ResourceRow>;
}

const statements = new WeakMap<Database.Database, LedgerStatements>();

function prepare(db: Database.Database): LedgerStatements {
  let s = statements.get(db);
  if (s === undefined) {
    s = {
      intend: db.prepare(
        `INSERT INTO resources (service_id, kind, key, data, created_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (service_id, kind, key) DO UPDATE SET data = excluded.data`,
      ),
      release: db.prepare(`DELETE FROM resources WHERE service_id = ? AND kind = ? AND key = ?`),
      list: db.prepare(`SELECT kind, key, data FROM resources WHERE service_id = ? ORDER BY created_at, rowid`),
    };
    statements.set(db, s);
  }
  return s;
}

export class SqliteResourceLedger implements ResourceLedger {
  readonly #s: LedgerStatements;

  constructor(
    db: Database.Database,
    readonly serviceId: string,
  ) {
    this.#s = prepare(db);
  }

  /** Records (or updates the data of) a resource; durable when this returns. */
  intend(resource: OwnedResource): void {
    const data = resource.data === undefined ? null : JSON.stringify(resource.data);
    try {
      this.#s.intend.run(this.serviceId, resource.kind, resource.key, data, Date.now());
    } catch (err) {
      if ((err as { code?: string }).code === "SQLITE_CONSTRAINT_FOREIGNKEY") {
        throw new VmctlError("NOT_FOUND", `cannot record ${resource.kind} ${resource.key}: service ${this.serviceId} is not stored`, {
          cause: err,
          details: { serviceId: this.serviceId },
        });
      }
      throw err;
    }
  }

  release(kind: string, key: string): void {
    this.#s.release.run(this.serviceId, kind, key);
  }

  list(): readonly OwnedResource[] {
    return this.#s.list.all(this.serviceId).map((row) =>
      row.data === null ? { kind: row.kind, key: row.key } : { kind: row.kind, key: row.key, data: JSON.parse(row.data) as JsonValue },
    );
  }
}
