// Watching through the engine: a snapshot then live changes, and a watcher that falls
// behind is ended rather than buffered.
import test from "ava";
import type { VmctlError } from "../errors.js";
import { openEngine, tempDir } from "../testing/fixtures.js";
import type { ServiceEvent } from "./api.js";

test("a watcher that falls too far behind is ended with RESOURCE_EXHAUSTED, not buffered without end", async (t) => {
  const stateDir = tempDir();
  const engine = await openEngine(stateDir, { watchQueueLimit: 5 });
  t.teardown(() => engine.close());
  const abort = new AbortController();
  const iterator = engine.watch([], abort.signal)[Symbol.asyncIterator]();
  // Subscribed (the first next() runs the generator up to the live part), then not read.
  const first = iterator.next();
  for (let i = 0; i < 8; i++) await engine.create({ name: `s${i}`, target: "process", spec: { args: ["true"] } });
  const seen: string[] = [];
  const err = await t.throwsAsync(async () => {
    seen.push(((await first).value as ServiceEvent).service.name);
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      seen.push(next.value.service.name);
    }
  });
  t.is((err as VmctlError).code, "RESOURCE_EXHAUSTED");
  t.regex(err?.message ?? "", /fell more than 5 events behind/);
  t.true(seen.length <= 6, seen.join(","));
  // A new watch starts over from a snapshot of everything.
  const again = engine.watch([], abort.signal)[Symbol.asyncIterator]();
  const snapshot: string[] = [];
  for (let i = 0; i < 8; i++) snapshot.push(((await again.next()).value as ServiceEvent).service.name);
  t.deepEqual(snapshot.sort(), ["s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7"]);
  abort.abort();
});

test("watch sends a snapshot, then live changes, and ends on abort", async (t) => {
  const stateDir = tempDir();
  const engine = await openEngine(stateDir);
  t.teardown(() => engine.close());
  await engine.create({ name: "first", target: "process", spec: { args: ["true"] } });
  const abort = new AbortController();
  const events: string[] = [];
  const done = (async () => {
    for await (const e of engine.watch([], abort.signal)) {
      events.push(`${e.kind}:${e.service.name}:${e.service.phase}`);
      if (e.kind === "deleted") abort.abort();
    }
  })();
  const second = await engine.create({ name: "second", target: "process", spec: { args: ["sh", "-c", "exit 0"] } });
  await engine.start(second.id);
  await engine.wait(second.id);
  await engine.delete(second.id);
  await done;
  t.is(events[0], "snapshot:first:created");
  t.is(events[1], "created:second:created");
  t.true(events.includes("updated:second:exited"), events.join(" "));
  t.is(events.at(-1), "deleted:second:exited");
});
