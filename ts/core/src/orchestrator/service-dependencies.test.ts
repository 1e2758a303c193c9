// Dependency ordering through the engine: dependencies start first and must be ready,
// a failed or late one fails the dependent's start, a dependency cannot be deleted.
import test from "ava";
import { VmctlError } from "../errors.js";
import { freePort, markedProcesses, openEngine, tempDir } from "../testing/fixtures.js";
import type { ServiceEvent } from "./api.js";

test("depends_on: the dependency is started first and its TCP readiness check passes before the dependent starts", async (t) => {
  const stateDir = tempDir();
  const engine = await openEngine(stateDir);
  t.teardown(() => engine.close());
  const port = await freePort();
  // Listens only after a delay, so the dependent has to wait.
  const listen = `setTimeout(() => require("net").createServer(s => s.end()).listen(${port}, "127.0.0.1"), 700)`;
  const db = await engine.create({
    name: "db",
    target: "process",
    spec: { args: [process.execPath, "-e", listen] },
    readiness: { check: { kind: "tcp", port }, intervalMs: 50, timeoutMs: 20_000 },
  });
  const app = await engine.create({
    name: "app",
    target: "process",
    spec: { args: ["sleep", "300"] },
    dependsOn: ["db"],
  });
  t.deepEqual(app.dependsOn, [db.id]);

  const abort = new AbortController();
  const events: ServiceEvent[] = [];
  const watching = (async () => {
    for await (const event of engine.watch(["app", "db"], abort.signal)) events.push(event);
  })();

  const started = await engine.start("app");
  t.is(started.phase, "running");
  const dbNow = engine.get("db");
  t.is(dbNow.phase, "running");
  t.true(dbNow.ready, "the dependency's readiness check passed");
  t.true(engine.get("app").ready);
  abort.abort();
  await watching;

  const appPhases = events.filter((e) => e.service.id === app.id).map((e) => `${e.kind}:${e.service.phase}`);
  t.deepEqual(appPhases.slice(0, 2), ["snapshot:created", "updated:waiting"]);
  t.true(appPhases.includes("updated:running"), appPhases.join(" "));
  // db became ready while app was waiting.
  const dbReadyAt = events.findIndex((e) => e.service.id === db.id && e.service.ready);
  const appStartingAt = events.findIndex((e) => e.service.id === app.id && e.service.phase === "starting");
  t.true(dbReadyAt !== -1 && dbReadyAt < appStartingAt, `${dbReadyAt} < ${appStartingAt}`);

  await engine.delete("app", { force: true });
  await engine.delete("db", { force: true });
  t.deepEqual([...markedProcesses(stateDir)], []);
});

test("a dependency that exits before it is ready fails the dependent's start, which goes back to created", async (t) => {
  const stateDir = tempDir();
  const engine = await openEngine(stateDir);
  t.teardown(() => engine.close());
  const port = await freePort();
  await engine.create({
    name: "dies",
    target: "process",
    spec: { args: ["sh", "-c", "sleep 0.2; exit 1"] },
    readiness: { check: { kind: "tcp", port }, intervalMs: 50, timeoutMs: 30_000 },
  });
  await engine.create({ name: "needs-it", target: "process", spec: { args: ["sleep", "300"] }, dependsOn: ["dies"] });
  const err = await t.throwsAsync(engine.start("needs-it"), { instanceOf: VmctlError });
  t.is(err?.code, "FAILED_PRECONDITION");
  t.regex(err?.message ?? "", /dies: exited before it was ready/);
  t.is(engine.get("needs-it").phase, "created");
  t.is(engine.get("dies").phase, "exited");
});

test("a dependency that is not ready in time fails the dependent's start with FAILED_PRECONDITION, not the client's DEADLINE_EXCEEDED", async (t) => {
  // The adversarial soak found it: CreateService answered DEADLINE_EXCEEDED, which the API
  // documents as the client's own deadline only.
  const stateDir = tempDir();
  const engine = await openEngine(stateDir);
  t.teardown(() => engine.close());
  const port = await freePort(); // nothing listens
  await engine.create({
    name: "never",
    target: "process",
    spec: { args: ["sleep", "300"] },
    readiness: { check: { kind: "tcp", port }, intervalMs: 20, timeoutMs: 100 },
  });
  const err = await t.throwsAsync(
    engine.create({ name: "after-it", target: "process", spec: { args: ["sleep", "300"] }, dependsOn: ["never"], start: true }),
    { instanceOf: VmctlError },
  );
  t.is(err?.code, "FAILED_PRECONDITION");
  t.regex(err?.message ?? "", /service never: tcp 127\.0\.0\.1:\d+ not ready after 100 ms .*; service after-it depends on it/);
  t.throws(() => engine.get("after-it"), { message: /after-it/ }, "a create+start that failed leaves nothing");
  await engine.delete("never", { force: true });
});

test("a service others depend on cannot be deleted, even with force, until they are gone", async (t) => {
  const stateDir = tempDir();
  const engine = await openEngine(stateDir);
  t.teardown(() => engine.close());
  await engine.create({ name: "db", target: "process", spec: { args: ["sleep", "300"] }, start: true });
  await engine.create({ name: "api", target: "process", spec: { args: ["true"] }, dependsOn: ["db"] });
  await engine.create({ name: "worker", target: "process", spec: { args: ["true"] }, dependsOn: ["db"] });
  for (const force of [false, true]) {
    const err = await t.throwsAsync(engine.delete("db", { force }), { instanceOf: VmctlError });
    t.is(err?.code, "FAILED_PRECONDITION");
    t.regex(err?.message ?? "", /db is a dependency of (api, worker|worker, api); delete them first/);
  }
  t.is(engine.get("db").phase, "running", "a refused delete stops nothing");
  await engine.delete("api");
  await t.throwsAsync(engine.delete("db", { force: true }), { message: /dependency of worker; delete it first/ });
  await engine.delete("worker");
  await engine.delete("db", { force: true });
  t.deepEqual(engine.list(), []);
});
