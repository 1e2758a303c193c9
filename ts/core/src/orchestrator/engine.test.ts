import { existsSync, readdirSync, writeFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import test from "ava";
import type { PluginRegistration } from "../contract/plugin.js";
import type { ServiceController } from "../contract/target.js";
import { VmctlError } from "../errors.js";
import { collectText, markedProcesses, openEngine, tempDir, waitForText } from "../testing/fixtures.js";
import { pidRunning } from "../target-kit/process.js";

/** Still running: a killed workload that init has not reaped yet (a zombie) runs no more. */
const isAlive = pidRunning;

test("lifecycle: create, start, logs, wait with the exit code, delete frees everything", async (t) => {
  const stateDir = tempDir();
  const engine = await openEngine(stateDir);
  t.teardown(() => engine.close());

  const created = await engine.create({
    name: "hello",
    target: "process",
    spec: { args: ["sh", "-c", "echo out-line; echo err-line >&2; exit 3"] },
    labels: { app: "demo" },
  });
  t.is(created.phase, "created");
  t.is(created.name, "hello");
  t.deepEqual(created.spec, { args: ["sh", "-c", "echo out-line; echo err-line >&2; exit 3"] });
  t.deepEqual(engine.get("hello"), engine.get(created.id));

  const started = await engine.start("hello");
  t.true(started.phase === "running" || started.phase === "exited");
  const exit = await engine.wait("hello");
  t.is(exit.code, 3);
  t.is(exit.reason, "exited");
  const after = engine.get("hello");
  t.is(after.phase, "exited");
  t.is(after.exit?.code, 3);
  t.is(after.pid, undefined);

  const text = await collectText(engine.logs("hello"));
  t.true(text.includes("out-line"), text);
  t.true(text.includes("err-line"), text);

  await t.throwsAsync(engine.start("hello"), { instanceOf: VmctlError, message: /exited/ });
  await engine.delete("hello");
  t.throws(() => engine.get("hello"), { instanceOf: VmctlError, message: /no service "hello"/ });
  t.false(existsSync(join(stateDir, "services", created.id)));
  t.true(engine.integrityCheck().ok);
});

test("stop sends SIGTERM, then SIGKILL after the timeout; delete refuses a running service without force", async (t) => {
  const stateDir = tempDir();
  const engine = await openEngine(stateDir);
  t.teardown(() => engine.close());

  const polite = await engine.create({ target: "process", spec: { args: ["sleep", "300"] }, start: true });
  t.is(polite.phase, "running");
  t.true(typeof polite.pid === "number" && isAlive(polite.pid));
  const err = await t.throwsAsync(engine.delete(polite.id), { instanceOf: VmctlError });
  t.is(err?.code, "FAILED_PRECONDITION");
  const stopped = await engine.stop(polite.id, { timeoutMs: 5000 });
  t.is(stopped.phase, "exited");
  t.is(stopped.exit?.reason, "stopped");
  t.is(stopped.exit?.signal, "SIGTERM");

  // A workload that ignores SIGTERM is killed after the timeout. Stop only once
  // the trap is installed: a SIGTERM that lands earlier kills sh politely.
  const stubborn = await engine.create({
    target: "process",
    spec: { args: ["sh", "-c", "trap '' TERM; echo ignoring; while :; do sleep 0.1; done"] },
    start: true,
  });
  await waitForText(engine.logs(stubborn.id, { follow: true }), "ignoring");
  const pid = stubborn.pid as number;
  const killed = await engine.stop(stubborn.id, { timeoutMs: 300 });
  t.is(killed.exit?.reason, "stopped");
  t.is(killed.exit?.signal, "SIGKILL");
  t.false(isAlive(pid));

  const running = await engine.create({ target: "process", spec: { args: ["sleep", "300"] }, start: true });
  await engine.delete(running.id, { force: true });
  t.false(isAlive(running.pid as number));
  await engine.delete(polite.id);
  await engine.delete(stubborn.id);
  t.deepEqual(engine.list(), []);
  t.deepEqual([...markedProcesses(stateDir)], []);
});

test("bad input is refused with the right code and the field path, and leaves nothing behind", async (t) => {
  const stateDir = tempDir();
  const engine = await openEngine(stateDir);
  t.teardown(() => engine.close());

  const cases: [unknown, string, RegExp][] = [
    [{}, "spec.args", /required/],
    [{ args: [] }, "spec.args", /non-empty/],
    [{ args: ["echo", 7] }, "spec.args[1]", /string/],
    [{ args: ["true"], env: { GOOD: "x", BAD: 1 } }, "spec.env.BAD", /string/],
    [{ args: ["true"], memory: 5 }, "spec.memory", /unknown field/],
    ["not an object", "spec", /object/],
  ];
  for (const [spec, field, problem] of cases) {
    const err = await t.throwsAsync(engine.create({ target: "process", spec }), { instanceOf: VmctlError });
    t.is(err?.code, "INVALID_ARGUMENT", field);
    t.is(err?.details.field, field);
    t.true(err?.message.startsWith(`${field}: `), err?.message);
    t.regex(err?.message ?? "", problem);
  }
  const badName = await t.throwsAsync(engine.create({ name: "Bad Name", target: "process", spec: { args: ["true"] } }));
  t.is((badName as VmctlError).details.field, "name");
  const badPort = await t.throwsAsync(
    engine.create({ target: "process", spec: { args: ["true"] }, readiness: { check: { kind: "tcp", port: 70000 } } }),
  );
  t.is((badPort as VmctlError).details.field, "readiness.check.port");

  const unknownTarget = await t.throwsAsync(engine.create({ target: "nope", spec: {} }), { instanceOf: VmctlError });
  t.is(unknownTarget?.code, "NOT_FOUND");
  t.regex(unknownTarget?.message ?? "", /unknown target "nope"/);
  const unknownDep = await t.throwsAsync(engine.create({ target: "process", spec: { args: ["true"] }, dependsOn: ["ghost"] }));
  t.is((unknownDep as VmctlError).code, "NOT_FOUND");
  t.is((unknownDep as VmctlError).details.field, "dependsOn[0]");
  const unknownService = await t.throwsAsync(engine.stop("ghost"), { instanceOf: VmctlError });
  t.is(unknownService?.code, "NOT_FOUND");

  t.deepEqual(engine.list(), []);
  t.deepEqual(readdirSync(join(stateDir, "services")), []);
});

test("a create whose start fails removes the service, its process and its files", async (t) => {
  const stateDir = tempDir();
  const engine = await openEngine(stateDir);
  t.teardown(() => engine.close());
  const err = await t.throwsAsync(
    engine.create({ name: "bad-cwd", target: "process", spec: { args: ["true"], cwd: "/nonexistent/dir" }, start: true }),
    { instanceOf: VmctlError },
  );
  t.regex(err?.message ?? "", /bad-cwd/);
  t.deepEqual(engine.list(), []);
  t.deepEqual(readdirSync(join(stateDir, "services")), []);
  // The name is free again.
  const again = await engine.create({ name: "bad-cwd", target: "process", spec: { args: ["true"] } });
  t.is(again.name, "bad-cwd");
});

test("a create that fails after the target made a resource destroys it (nothing half-created)", async (t) => {
  const stateDir = tempDir();
  const made: string[] = [];
  // A real target that makes a real file, recorded in the ledger first, then fails in prepare.
  const flaky: PluginRegistration = {
    name: "flaky-plugin",
    targets: [
      {
        target: "flaky",
        init: () => ({
          target: "flaky",
          capabilities: { exec: false, pause: false, network: false, volumes: false, logsFollow: false },
          validate: (spec) => (spec ?? {}) as Record<string, never>,
          create: async (id, _spec, ctx) => flakyController(id, ctx.resources, join(stateDir, `made-${id}`), made),
          adopt: async (record, ctx) => flakyController(record.id, ctx.resources, join(stateDir, `made-${record.id}`), made),
        }),
      },
    ],
  };
  const engine = await openEngine(stateDir, { plugins: [flaky] });
  t.teardown(() => engine.close());
  const err = await t.throwsAsync(engine.create({ name: "half", target: "flaky", spec: {} }), { instanceOf: VmctlError });
  t.regex(err?.message ?? "", /creating service half: disk full/);
  t.is(made.length, 1);
  t.false(existsSync(made[0] as string), "the file the target made is gone");
  t.deepEqual(engine.list(), []);
  t.deepEqual(readdirSync(join(stateDir, "services")), []);
  t.true(engine.integrityCheck().ok);
});

test("a target whose create() fails after making a resource: the engine adopts what is left and destroys it at once", async (t) => {
  const stateDir = tempDir();
  const made: string[] = [];
  const fails: PluginRegistration = {
    name: "fails-in-create-plugin",
    targets: [
      {
        target: "fails-in-create",
        init: () => ({
          target: "fails-in-create",
          capabilities: { exec: false, pause: false, network: false, volumes: false, logsFollow: false },
          validate: (spec) => (spec ?? {}) as Record<string, never>,
          create: async (id, _spec, ctx) => {
            const file = join(stateDir, `made-${id}`);
            ctx.resources.intend({ kind: "file", key: file });
            writeFileSync(file, "x");
            made.push(file);
            throw new Error("out of quota");
          },
          adopt: async (record, ctx) => flakyController(record.id, ctx.resources, join(stateDir, `made-${record.id}`), made),
        }),
      },
    ],
  };
  const engine = await openEngine(stateDir, { plugins: [fails] });
  t.teardown(() => engine.close());
  const err = await t.throwsAsync(engine.create({ name: "half", target: "fails-in-create", spec: {} }), { instanceOf: VmctlError });
  t.regex(err?.message ?? "", /creating service half: out of quota/);
  t.is(made.length, 1);
  t.false(existsSync(made[0] as string), "the file the target made is gone now, not at the next start-up");
  t.deepEqual(engine.list(), []);
  t.deepEqual(readdirSync(join(stateDir, "services")), []);
  t.true(engine.integrityCheck().ok);
});

function flakyController(
  id: string,
  ledger: import("../contract/target.js").ResourceLedger,
  file: string,
  made: string[],
): ServiceController {
  const never = new Promise<never>(() => {});
  return {
    id,
    async prepare() {
      ledger.intend({ kind: "file", key: file });
      writeFileSync(file, "x");
      made.push(file);
      throw new Error("disk full");
    },
    async start() {},
    async stop() {},
    async state() {
      return { phase: "created", since: new Date() };
    },
    logs: async function* () {},
    wait: () => never,
    async destroy() {
      const { rmSync } = await import("node:fs");
      for (const r of ledger.list()) {
        rmSync(r.key, { force: true });
        ledger.release(r.kind, r.key);
      }
    },
    record: () => ({}),
  };
}

test("a taken name is ALREADY_EXISTS, also when many creates race for it", async (t) => {
  const stateDir = tempDir();
  const engine = await openEngine(stateDir);
  t.teardown(() => engine.close());
  await engine.create({ name: "db", target: "process", spec: { args: ["true"] } });
  const err = await t.throwsAsync(engine.create({ name: "db", target: "process", spec: { args: ["true"] } }), { instanceOf: VmctlError });
  t.is(err?.code, "ALREADY_EXISTS");
  t.is(err?.details.field, "name");

  const results = await Promise.allSettled(
    Array.from({ length: 20 }, () => engine.create({ name: "contested", target: "process", spec: { args: ["true"] } })),
  );
  t.is(results.filter((r) => r.status === "fulfilled").length, 1);
  for (const r of results) {
    if (r.status === "rejected") t.is((r.reason as VmctlError).code, "ALREADY_EXISTS");
  }
  t.is(engine.list().filter((s) => s.name === "contested").length, 1);
  t.is(readdirSync(join(stateDir, "services")).length, 2);
});

test("100 concurrent creates all succeed with distinct names and consistent state", async (t) => {
  const stateDir = tempDir();
  const engine = await openEngine(stateDir);
  t.teardown(() => engine.close());
  const results = await Promise.all(
    Array.from({ length: 100 }, (_, i) =>
      engine.create({ name: i % 2 === 0 ? `svc-${i}` : undefined, target: "process", spec: { args: ["true"] }, labels: { batch: "a" } }),
    ),
  );
  t.is(results.length, 100);
  t.is(new Set(results.map((r) => r.id)).size, 100);
  t.is(new Set(results.map((r) => r.name)).size, 100);
  const listed = engine.list({ labels: ["batch=a"] });
  t.is(listed.length, 100);
  t.deepEqual(listed.map((s) => s.id).sort(), results.map((r) => r.id).sort());
  t.true(listed.every((s) => s.phase === "created"));
  t.is(readdirSync(join(stateDir, "services")).length, 100);
  t.true(engine.integrityCheck().ok);
});

test("list filters by label selector, target and phase", async (t) => {
  const stateDir = tempDir();
  const engine = await openEngine(stateDir);
  t.teardown(() => engine.close());
  const a = await engine.create({ name: "a", target: "process", spec: { args: ["true"] }, labels: { tier: "web", env: "prod" } });
  const b = await engine.create({ name: "b", target: "process", spec: { args: ["true"] }, labels: { tier: "db" } });
  await engine.start("b");
  await engine.wait("b");
  t.deepEqual(engine.list({ labels: ["tier=web"] }).map((s) => s.name), ["a"]);
  t.deepEqual(engine.list({ labels: ["tier"] }).map((s) => s.name), ["a", "b"]);
  t.deepEqual(engine.list({ labels: ["tier", "env=prod"] }).map((s) => s.name), ["a"]);
  t.deepEqual(engine.list({ phases: ["exited"] }).map((s) => s.id), [b.id]);
  t.deepEqual(engine.list({ phases: ["created", "exited"] }).length, 2);
  t.deepEqual(engine.list({ target: "process" }).length, 2);
  t.deepEqual(engine.list({ target: "other" }), []);
  t.is(engine.get(a.id).labels.env, "prod");
  const bad = t.throws(() => engine.list({ labels: ["=x"] }), { instanceOf: VmctlError });
  t.is(bad?.details.field, "labels[0]");
});

test("logs follow streams output while the service runs and ends when it exits", async (t) => {
  const stateDir = tempDir();
  const engine = await openEngine(stateDir);
  t.teardown(() => engine.close());
  await engine.create({
    name: "ticker",
    target: "process",
    spec: { args: ["sh", "-c", "for i in 1 2 3; do echo tick-$i; sleep 0.2; done"] },
    start: true,
  });
  const seen: string[] = [];
  for await (const chunk of engine.logs("ticker", { follow: true })) seen.push(new TextDecoder().decode(chunk.data));
  t.is(seen.join(""), "tick-1\ntick-2\ntick-3\n");
  t.is(seen.length >= 2, true, "output arrived in more than one chunk, as it was produced");
  t.is(engine.get("ticker").phase, "exited");

  // Abort ends a follow of a service that keeps running.
  await engine.create({ name: "quiet", target: "process", spec: { args: ["sleep", "300"] }, start: true });
  const abort = new AbortController();
  setTimeout(() => abort.abort(), 200);
  const text = await collectText(engine.logs("quiet", { follow: true, signal: abort.signal }));
  t.is(text, "");
  await engine.delete("quiet", { force: true });
});

test("targets() reports the loaded plugin and its capabilities", async (t) => {
  const engine = await openEngine(tempDir());
  t.teardown(() => engine.close());
  const targets = engine.targets();
  t.is(targets.length, 1);
  t.like(targets[0], { name: "process", status: "ready", capabilities: { logsFollow: true, exec: false } });
  t.true(targets[0]?.plugin.endsWith("vmctl-plugin-process"));
});

test("restart: running services are adopted by pid, dead ones get their recorded exit", async (t) => {
  const stateDir = tempDir();
  let engine = await openEngine(stateDir);
  const keeps = await engine.create({ name: "keeps", target: "process", spec: { args: ["sleep", "300"] }, start: true });
  const dies = await engine.create({ name: "dies", target: "process", spec: { args: ["sleep", "300"] }, start: true });
  const idle = await engine.create({ name: "idle", target: "process", spec: { args: ["true"] } });
  await engine.close(); // detaches: the processes keep running
  t.true(isAlive(keeps.pid as number));
  // While no orchestrator watches, one of them ends with a code of its own.
  process.kill(dies.pid as number, "SIGTERM");
  await new Promise((r) => setTimeout(r, 300));

  engine = await openEngine(stateDir);
  t.teardown(() => engine.close());
  const k = engine.get("keeps");
  t.is(k.phase, "running");
  t.is(k.pid, keeps.pid);
  const d = engine.get("dies");
  t.is(d.phase, "exited");
  t.is(d.exit?.signal, "SIGTERM");
  t.is(engine.get("idle").phase, "created");
  t.deepEqual(engine.recovery.exited, [dies.id]);

  // The adopted service is followed again: its exit is recorded when it ends.
  const stopped = await engine.stop("keeps", { timeoutMs: 2000 });
  t.is(stopped.exit?.reason, "stopped");
  const started = await engine.start(idle.id);
  t.true(started.phase === "running" || started.phase === "exited");
  t.is((await engine.wait(idle.id)).code, 0);
  for (const s of engine.list()) await engine.delete(s.id, { force: true });
  t.deepEqual([...markedProcesses(stateDir)], []);
});

test("a target that is unavailable after a restart leaves its services in place with a status", async (t) => {
  const stateDir = tempDir();
  let engine = await openEngine(stateDir);
  const svc = await engine.create({ name: "orphaned", target: "process", spec: { args: ["sleep", "300"] }, start: true });
  await engine.close();

  engine = await openEngine(stateDir, { plugins: [] });
  const kept = engine.get("orphaned");
  t.is(kept.phase, "running");
  t.regex(kept.status ?? "", /target process unavailable: unknown/);
  const err = await t.throwsAsync(engine.stop("orphaned"), { instanceOf: VmctlError });
  t.is(err?.code, "FAILED_PRECONDITION");
  await engine.close();

  engine = await openEngine(stateDir);
  t.teardown(() => engine.close());
  const back = engine.get("orphaned");
  t.is(back.status, undefined);
  t.is(back.pid, svc.pid);
  await engine.delete("orphaned", { force: true });
  t.false(isAlive(svc.pid as number));
});

test("a second orchestrator on the same state directory is refused", async (t) => {
  const stateDir = tempDir();
  const engine = await openEngine(stateDir);
  t.teardown(() => engine.close());
  const err = await t.throwsAsync(openEngine(stateDir), { instanceOf: VmctlError });
  t.is(err?.code, "UNAVAILABLE");
  t.regex(err?.message ?? "", /in use by another vmctld/);
});

test("service directories and owner labels: serviceDir under the state dir, owner = persisted instance id", async (t) => {
  const stateDir = tempDir();
  let seen: Readonly<Record<string, string>> | undefined;
  let dir = "";
  const probe: PluginRegistration = {
    name: "probe-plugin",
    targets: [
      {
        target: "probe",
        init: () => ({
          target: "probe",
          capabilities: { exec: false, pause: false, network: false, volumes: false, logsFollow: false },
          validate: () => ({}),
          create: async (id, _spec, ctx) => {
            seen = ctx.ownerLabels;
            dir = ctx.serviceDir;
            await mkdir(ctx.serviceDir, { recursive: true });
            return flakyController(id, ctx.resources, join(ctx.serviceDir, "f"), []);
          },
          adopt: async () => undefined,
        }),
      },
    ],
  };
  let engine = await openEngine(stateDir, { plugins: [probe] });
  const owner = engine.instanceId;
  await t.throwsAsync(engine.create({ target: "probe", spec: {} }));
  t.like(seen, { "vmctl.io/owner": owner });
  t.regex(seen?.["vmctl.io/service"] ?? "", /^[0-9a-f]{16}$/);
  t.is(dir, join(stateDir, "services", seen?.["vmctl.io/service"] ?? ""));
  await engine.close();
  engine = await openEngine(stateDir, { plugins: [probe] });
  t.teardown(() => engine.close());
  t.is(engine.instanceId, owner, "the instance id is persisted");
});

test("a plugin copied outside the repository runs services; a refused plugin shows as failed without harming others", async (t) => {
  const { cpSync, mkdirSync } = await import("node:fs");
  const { PROCESS_PLUGIN_DIR } = await import("../testing/fixtures.js");
  const elsewhere = join(tempDir("vmctl-outside-"), "my-process-plugin");
  cpSync(PROCESS_PLUGIN_DIR, elsewhere, { recursive: true });
  const bundler = join(tempDir("vmctl-outside-"), "bundler");
  cpSync(PROCESS_PLUGIN_DIR, bundler, { recursive: true });
  writeFileSync(
    join(bundler, "package.json"),
    JSON.stringify({ name: "vmctl-plugin-bundler", vmctl: { entry: "./index.js", targets: ["bundled"] }, engines: { vmctl: "*" } }),
  );
  mkdirSync(join(bundler, "node_modules", "@vmctl", "core"), { recursive: true });
  writeFileSync(join(bundler, "node_modules", "@vmctl", "core", "package.json"), JSON.stringify({ name: "@vmctl/core" }));

  const stateDir = tempDir();
  const engine = await openEngine(stateDir, { plugins: [elsewhere, bundler] });
  t.teardown(() => engine.close());
  const targets = engine.targets();
  t.like(targets.find((x) => x.name === "process"), { plugin: elsewhere, status: "ready" });
  // Its own @vmctl/core is bypassed (imports resolve to the host's); what refuses it is its manifest.
  t.regex(targets.find((x) => x.name === "bundled")?.status ?? "", /^failed: plugin vmctl-plugin-bundler .* declares targets \[bundled\] but the entry registers \[process\]/);

  await engine.create({ name: "outside", target: "process", spec: { args: ["sh", "-c", "echo from-outside"] }, start: true });
  t.is((await engine.wait("outside")).code, 0);
  t.is(await collectText(engine.logs("outside")), "from-outside\n");
  const err = await t.throwsAsync(engine.create({ target: "bundled", spec: {} }), { instanceOf: VmctlError });
  t.is(err?.code, "UNAVAILABLE");
});
