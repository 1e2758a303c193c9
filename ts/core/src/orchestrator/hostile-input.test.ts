// Defects found by feeding vmctld what an attacker or a careless client would (issue 8),
// each pinned at the engine: references, names, labels, selectors, limits, idempotency.
import { chmodSync, chownSync, statSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { LIMITS } from "../contract/limits.js";
import { ValidationError, VmctlError } from "../errors.js";
import { DATABASE_FILE, StateStore } from "../state/state-store.js";
import { openEngine, tempDir } from "../testing/fixtures.js";
import { checkCreateInput } from "./create-input.js";
import { parseSelectors } from "./label-selector.js";

const idle = { args: ["sleep", "30"] };

function fieldOf(t: { throws: (fn: () => unknown, e: object) => unknown }, fn: () => unknown): string | undefined {
  return (t.throws(fn, { instanceOf: ValidationError }) as ValidationError | undefined)?.field;
}

test("an empty, oversized or malformed reference is INVALID_ARGUMENT naming id, with a short message", async (t) => {
  const engine = await openEngine(tempDir());
  t.teardown(() => engine.close());
  const empty = t.throws(() => engine.get(""), { instanceOf: VmctlError });
  t.is(empty?.code, "INVALID_ARGUMENT");
  t.is(empty?.details.field, "id");
  for (const ref of ["x".repeat(10_000), "é", "a\nb", "oci\0", "ключ"]) {
    const err = t.throws(() => engine.get(ref), { instanceOf: VmctlError });
    t.is(err?.code, "INVALID_ARGUMENT", ref.slice(0, 10));
    t.is(err?.details.field, "id");
    t.true((err?.message.length ?? 0) < 200, `message of ${err?.message.length} characters`);
    t.false(err?.message.includes("\n") ?? true, "control characters are escaped");
  }
  // A well-formed reference that names nothing is still NOT_FOUND.
  t.is(t.throws(() => engine.get("nothing-here"), { instanceOf: VmctlError })?.code, "NOT_FOUND");
  await t.throwsAsync(engine.stop("", {}), { instanceOf: VmctlError, message: /^id: / });
  await t.throwsAsync(engine.delete("x".repeat(100)), { instanceOf: VmctlError, message: /^id: / });
});

test("a name of the id form is refused, so no name can shadow another service's id", async (t) => {
  const engine = await openEngine(tempDir());
  t.teardown(() => engine.close());
  const victim = await engine.create({ target: "process", spec: idle });
  const err = await t.throwsAsync(engine.create({ target: "process", spec: idle, name: victim.id }), { instanceOf: VmctlError });
  t.is(err?.code, "INVALID_ARGUMENT");
  t.is(err?.details.field, "name");
  t.is(engine.list().length, 1);
  t.is(engine.get(victim.id).id, victim.id);
});

test("labels: count, sizes and control characters are bounded, each error naming the label", (t) => {
  const many = Object.fromEntries(Array.from({ length: LIMITS.labelCount + 1 }, (_, i) => [`k${i}`, "v"]));
  t.is(fieldOf(t, () => checkCreateInput({ target: "x", spec: {}, labels: many })), "labels");
  t.is(fieldOf(t, () => checkCreateInput({ target: "x", spec: {}, labels: { big: "v".repeat(LIMITS.labelValueBytes + 1) } })), "labels.big");
  t.is(fieldOf(t, () => checkCreateInput({ target: "x", spec: {}, labels: { nl: "a\nb" } })), "labels.nl");
  t.is(fieldOf(t, () => checkCreateInput({ target: "x", spec: {}, labels: { "ключ": "x" } })), "labels.ключ");
  const total = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, "v".repeat(1000)]));
  t.is(fieldOf(t, () => checkCreateInput({ target: "x", spec: {}, labels: total })), "labels");
  // Unicode values are fine.
  t.deepEqual(checkCreateInput({ target: "x", spec: {}, labels: { team: "équipe ключ" } }).labels, { team: "équipe ключ" });
});

test("readiness intervals and timeouts are bounded; 2^32-1 ms is refused", (t) => {
  const check = { kind: "tcp" as const, port: 80 };
  t.is(fieldOf(t, () => checkCreateInput({ target: "x", spec: {}, readiness: { check, intervalMs: 2 ** 32 - 1 } })), "readiness.intervalMs");
  t.is(fieldOf(t, () => checkCreateInput({ target: "x", spec: {}, readiness: { check, timeoutMs: 2 ** 32 - 1 } })), "readiness.timeoutMs");
  t.is(checkCreateInput({ target: "x", spec: {}, readiness: { check, intervalMs: LIMITS.readinessIntervalMs } }).readiness?.intervalMs, LIMITS.readinessIntervalMs);
});

test("a spec with a __proto__ key, nested too deep or too large is refused naming where", async (t) => {
  const engine = await openEngine(tempDir());
  t.teardown(() => engine.close());
  const proto = JSON.parse('{"args": ["true"], "env": {"__proto__": {"polluted": "yes"}}}') as unknown;
  const err = await t.throwsAsync(engine.create({ target: "process", spec: proto }), { instanceOf: VmctlError });
  t.is(err?.details.field, "spec.env.__proto__");
  t.is(({} as Record<string, unknown>).polluted, undefined);

  let deep: unknown = "leaf";
  for (let i = 0; i < 10_000; i++) deep = { a: deep };
  const tooDeep = await t.throwsAsync(engine.create({ target: "process", spec: { args: ["true"], deep } }), { instanceOf: VmctlError });
  t.is(tooDeep?.code, "INVALID_ARGUMENT");
  t.regex(tooDeep?.message ?? "", /nested too deeply/);

  const huge = await t.throwsAsync(engine.create({ target: "process", spec: { args: ["x".repeat(LIMITS.specBytes)] } }), { instanceOf: VmctlError });
  t.is(huge?.details.field, "spec");
  t.is(engine.list().length, 0);
});

test("label selectors are checked: k!=v is refused instead of meaning the key k!", (t) => {
  const err = t.throws(() => parseSelectors(["app=web", "k!=v"]), { instanceOf: ValidationError });
  t.is(err?.field, "labels[1]");
  t.is(t.throws(() => parseSelectors(["=v"]), { instanceOf: ValidationError })?.field, "labels[0]");
  t.is(t.throws(() => parseSelectors(Array.from({ length: LIMITS.selectorCount + 1 }, () => "a")), { instanceOf: ValidationError })?.field, "labels");
  t.deepEqual(parseSelectors(["vmctl.io/owner=x=y"]), [{ key: "vmctl.io/owner", value: "x=y" }]);
});

test("a stop timeout past 24 h, or negative, is INVALID_ARGUMENT naming timeoutMs", async (t) => {
  const engine = await openEngine(tempDir());
  t.teardown(() => engine.close());
  const s = await engine.create({ target: "process", spec: idle });
  for (const timeoutMs of [-1, 1.5, LIMITS.stopTimeoutMs + 1, 2 ** 32 - 1]) {
    const err = await t.throwsAsync(engine.stop(s.id, { timeoutMs }), { instanceOf: VmctlError });
    t.is(err?.details.field, "timeoutMs");
  }
});

test("request ids make creates idempotent: a retry returns the same service, a different request is ALREADY_EXISTS", async (t) => {
  const engine = await openEngine(tempDir());
  t.teardown(() => engine.close());
  const request = { target: "process", spec: idle, labels: { a: "1" }, requestId: "3f6c1e0a-retry-1" };
  const first = await engine.create(request);
  const again = await engine.create({ ...request, labels: { a: "1" } });
  t.is(again.id, first.id);
  t.is(engine.list().length, 1);

  const other = await t.throwsAsync(engine.create({ ...request, labels: { a: "2" } }), { instanceOf: VmctlError });
  t.is(other?.code, "ALREADY_EXISTS");
  t.is(other?.details.field, "requestId");

  // Concurrent retries of an unnamed create make one service.
  const racing = { target: "process", spec: idle, requestId: "race-1" };
  const results = await Promise.all(Array.from({ length: 8 }, () => engine.create(racing)));
  t.is(new Set(results.map((r) => r.id)).size, 1);
  t.is(engine.list().length, 2);

  // Once its service is deleted, the key makes a new one.
  await engine.delete(first.id);
  const fresh = await engine.create(request);
  t.not(fresh.id, first.id, "the key is free again once its service is gone");

  t.is(fieldOf(t, () => checkCreateInput({ target: "x", spec: {}, requestId: "no spaces" })), "requestId");
  t.is(fieldOf(t, () => checkCreateInput({ target: "x", spec: {}, requestId: "x".repeat(65) })), "requestId");
});

test("a request id survives a restart: the retry after a crash finds the acknowledged service", async (t) => {
  const stateDir = tempDir();
  const request = { target: "process", spec: { args: ["true"] }, requestId: "after-restart" };
  const engine = await openEngine(stateDir);
  const first = await engine.create(request);
  await engine.close();
  const reopened = await openEngine(stateDir);
  t.teardown(() => reopened.close());
  t.is((await reopened.create(request)).id, first.id);
  t.is(reopened.list().length, 1);
});

test("the state directory is tightened to 0700 and the database created 0600", async (t) => {
  const stateDir = tempDir();
  chmodSync(stateDir, 0o755);
  const store = StateStore.open(stateDir);
  t.teardown(() => store.close());
  t.is(statSync(stateDir).mode & 0o777, 0o700);
  t.is(statSync(join(stateDir, DATABASE_FILE)).mode & 0o777, 0o600);
  store.reserve({ id: "s1", name: "one", target: "t", labels: {}, spec: { env: { SECRET: "x" } }, dependsOn: [] });
  t.is(statSync(join(stateDir, `${DATABASE_FILE}-wal`)).mode & 0o777, 0o600);
});

test("a state directory owned by another user is refused", (t) => {
  const stateDir = tempDir();
  chownSync(stateDir, 65534, 65534);
  const err = t.throws(() => StateStore.open(stateDir), { instanceOf: VmctlError });
  t.is(err?.code, "FAILED_PRECONDITION");
  t.regex(err?.message ?? "", /belongs to uid 65534/);
});
