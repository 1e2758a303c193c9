import { join } from "node:path";
import Database from "better-sqlite3";
import test from "ava";
import { VmctlError } from "../errors.js";
import { tempDir } from "../testing/fixtures.js";
import { SCHEMA_VERSION } from "./schema.js";
import { DATABASE_FILE, StateStore } from "./state-store.js";

const svc = (id: string, name = id) => ({ id, name, target: "process", labels: { a: "b" }, spec: { args: ["x"] }, dependsOn: [] });

test("a new state directory gets the current schema, WAL, synchronous=FULL and a persistent instance id", (t) => {
  const dir = tempDir();
  const store = StateStore.open(dir);
  const instanceId = store.instanceId;
  t.regex(instanceId, /^[0-9a-f-]{36}$/);
  store.close();
  const db = new Database(join(dir, DATABASE_FILE));
  t.teardown(() => db.close());
  t.is(db.pragma("user_version", { simple: true }), SCHEMA_VERSION);
  t.is(db.pragma("journal_mode", { simple: true }), "wal");
  db.close();
  const again = StateStore.open(dir);
  t.teardown(() => again.close());
  t.is(again.instanceId, instanceId);
});

test("the store's connection runs with synchronous=FULL and foreign keys on", (t) => {
  const store = StateStore.open(tempDir());
  t.teardown(() => store.close());
  t.deepEqual(store.settings(), { journalMode: "wal", synchronous: "FULL", lockingMode: "exclusive", schemaVersion: SCHEMA_VERSION });
  store.reserve(svc("x"));
  t.throws(() => store.saveControllerData("nope", {}), { any: true, code: "SQLITE_CONSTRAINT_FOREIGNKEY" });
  t.true(store.integrityCheck().ok);
  t.deepEqual(store.integrityCheck().messages, ["ok"]);
});

test("a database from a newer schema is refused", (t) => {
  const dir = tempDir();
  StateStore.open(dir).close();
  const db = new Database(join(dir, DATABASE_FILE));
  db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
  db.close();
  const err = t.throws(() => StateStore.open(dir), { instanceOf: VmctlError });
  t.is(err?.code, "FAILED_PRECONDITION");
  t.regex(err?.message ?? "", /newer than this vmctl knows/);
});

test("one store per directory: a second open is UNAVAILABLE until the first closes", (t) => {
  const dir = tempDir();
  const first = StateStore.open(dir);
  const err = t.throws(() => StateStore.open(dir), { instanceOf: VmctlError });
  t.is(err?.code, "UNAVAILABLE");
  first.close();
  const second = StateStore.open(dir);
  second.close();
  t.pass();
});

test("names are unique in the database; creating rows are hidden from list unless asked", (t) => {
  const store = StateStore.open(tempDir());
  t.teardown(() => store.close());
  store.reserve(svc("1", "web"));
  const err = t.throws(() => store.reserve(svc("2", "web")), { instanceOf: VmctlError });
  t.is(err?.code, "ALREADY_EXISTS");
  t.deepEqual(store.list(), []);
  t.is(store.list({ all: true }).length, 1);
  const active = store.update("1", { lifecycle: "active", phase: "running", pid: 7, addresses: ["10.0.0.2"] });
  t.like(active, { lifecycle: "active", phase: "running", pid: 7, addresses: ["10.0.0.2"], labels: { a: "b" } });
  t.is(store.find("web")?.id, "1");
  const exit = { code: 3, reason: "exited", at: new Date(1_700_000_000_000) };
  const exited = store.update("1", { phase: "exited", exit, pid: null });
  t.deepEqual(exited?.exit, exit);
  t.is(exited?.pid, undefined);
  t.is(store.update("ghost", { phase: "running" }), undefined);
});
