// Stops that overlap (issue 8): an abandoned long stop must not block a shorter one or a
// forced delete, and a caller that gives up waiting does not cancel the stop itself.
import test, { type ExecutionContext } from "ava";
import { VmctlError } from "../errors.js";
import { markedProcesses, openEngine, tempDir, waitForText } from "../testing/fixtures.js";
import type { Orchestrator } from "./engine.js";

/** A running service that ignores SIGTERM (its trap is set), on a fresh engine. */
async function stubbornService(t: ExecutionContext): Promise<{ engine: Orchestrator; stateDir: string; id: string }> {
  const stateDir = tempDir();
  const engine = await openEngine(stateDir);
  t.teardown(() => engine.close());
  const spec = { args: ["sh", "-c", "trap '' TERM; echo trapped; while :; do sleep 1; done"] };
  const { id } = await engine.create({ target: "process", spec, start: true });
  await waitForText(engine.logs(id, { follow: true }), "trapped");
  return { engine, stateDir, id };
}

test("a long stop whose caller went away is hurried by a stop with timeout 0", async (t) => {
  const { engine, stateDir, id } = await stubbornService(t);
  const gaveUp = new AbortController();
  const long = engine.stop(id, { timeoutMs: 100_000, signal: gaveUp.signal });
  setTimeout(() => gaveUp.abort(), 300);
  const cancelled = await t.throwsAsync(long, { instanceOf: VmctlError });
  t.is(cancelled?.code, "CANCELLED");
  t.is(engine.get(id).phase, "stopping", "the stop goes on without its caller");

  const began = Date.now();
  const stopped = await engine.stop(id, { timeoutMs: 0 });
  t.true(Date.now() - began < 5000, `stop -t 0 took ${Date.now() - began} ms`);
  t.is(stopped.phase, "exited");
  t.is(stopped.exit?.signal, "SIGKILL");
  t.is(markedProcesses(stateDir).size, 0);
});

test("a forced delete after an abandoned long stop completes within the default grace", async (t) => {
  const { engine, stateDir, id } = await stubbornService(t);
  const gaveUp = new AbortController();
  const long = engine.stop(id, { timeoutMs: 100_000, signal: gaveUp.signal });
  gaveUp.abort();
  await t.throwsAsync(long, { instanceOf: VmctlError, message: /still in progress/ });

  const began = Date.now();
  await engine.delete(id, { force: true });
  t.true(Date.now() - began < 15_000, `delete -f took ${Date.now() - began} ms`);
  t.deepEqual(engine.list(), []);
  t.is(markedProcesses(stateDir).size, 0);
});

test("stops join: a second stop with a longer timeout waits for the first, not for its own grace", async (t) => {
  const { engine, id } = await stubbornService(t);
  const began = Date.now();
  const [first, second] = await Promise.all([engine.stop(id, { timeoutMs: 500 }), engine.stop(id, { timeoutMs: 60_000 })]);
  t.true(Date.now() - began < 10_000);
  t.is(first.phase, "exited");
  t.is(second.phase, "exited");
});
