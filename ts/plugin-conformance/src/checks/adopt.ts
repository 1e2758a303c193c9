// adopt(): after a simulated orchestrator restart — the old factory closed, a NEW factory
// from the same init and state dir, a new context over the same serviceDir whose ledger
// holds what the old one held, and the record built from record() as the engine persists
// it — the new controller reattaches to a running service and to an exited one.
import type { ControllerRecord, JsonValue, ServiceFactory } from "@vmctl/core/contract";
import type { Check } from "./check.js";
import type { CheckEnv, Service } from "./check-env.js";
import { destroyAndCheckFreed, exitText, startRunning, untilPhase } from "./check-env.js";
import { describe, fail } from "./budget.js";

/** Closes `old`, makes a new factory, and adopts `s` through it. */
async function restartAndAdopt(env: CheckEnv, s: Service, old: ServiceFactory): Promise<Service> {
  let data: JsonValue;
  try {
    data = JSON.parse(JSON.stringify(s.controller.record())) as JsonValue;
  } catch (err) {
    fail(`record() is not JSON-serialisable: ${describe(err)}`);
  }
  const record: ControllerRecord = {
    id: s.id,
    target: old.target,
    spec: s.spec,
    data,
    resources: s.ctx.resources.list(),
  };
  // The orchestrator going away: factory-wide resources are released, services run on.
  await env.step("close() of the old factory", () => old.close?.());
  const fresh = await env.step("init of a new factory (restart)", () => env.harness.newFactory());
  const ctx = env.harness.context(s.id, record.resources);
  const adopted = await env.step(`adopt(${s.id})`, () => fresh.adopt(record, ctx));
  if (adopted === undefined) {
    fail(`adopt() returned undefined although the ledger holds ${record.resources.map((r) => `${r.kind} ${r.key}`).join(", ") || "nothing"}: nothing could free them`);
  }
  if (adopted.id !== s.id) fail(`adopt() returned a controller whose id is ${JSON.stringify(adopted.id)}, not ${s.id}`);
  const service: Service = { id: s.id, ctx, controller: adopted, spec: s.spec };
  env.track(service);
  return service;
}

export const adoptRunning: Check = {
  name: "adopt/running",
  async run(env) {
    const old = await env.step("init of a factory", () => env.harness.newFactory());
    const { spec, line } = env.fixtures.specs.runsUntilStopped();
    const s = await env.service(spec, { factory: old });
    await startRunning(env, s, line);
    const a = await restartAndAdopt(env, s, old);
    const state = await env.step(`state(${a.id}) after adopt`, () => a.controller.state());
    if (state.phase !== "running") fail(`the adopted controller says "${state.phase}" (${exitText(state.exit)}) for a service that still runs`);
    await untilPhase(env, a, ["running"]);
    const { stopMs, forceMarginMs } = env.timeouts;
    await env.step(`stop(${a.id}) through the adopted controller`, () => a.controller.stop({ timeoutMs: stopMs }), stopMs + forceMarginMs);
    const exit = await env.step(`wait(${a.id}) through the adopted controller`, () => a.controller.wait());
    if (exit.reason !== "stopped") fail(`after stop() through the adopted controller, wait() says ${exitText(exit)}; expected reason "stopped"`);
    await destroyAndCheckFreed(env, a);
  },
};

export const adoptExited: Check = {
  name: "adopt/exited",
  async run(env) {
    const old = await env.step("init of a factory", () => env.harness.newFactory());
    const code = env.exitCodes.find((c) => c !== 0) ?? 0;
    const { spec } = env.fixtures.specs.exitsWith(code);
    const s = await env.service(spec, { factory: old });
    await env.step(`prepare(${s.id})`, () => s.controller.prepare());
    await env.step(`start(${s.id})`, () => s.controller.start());
    await env.step(`wait(${s.id})`, () => s.controller.wait());
    const a = await restartAndAdopt(env, s, old);
    const state = await env.step(`state(${a.id}) after adopt`, () => a.controller.state());
    if (state.phase !== "exited") fail(`the adopted controller says "${state.phase}" for a service that had exited`);
    const exit = await env.step(`wait(${a.id}) through the adopted controller`, () => a.controller.wait());
    if (exit.code !== code) {
      if (exit.reason !== "lost") fail(`the adopted controller reports ${exitText(exit)}; the service exited with code ${code}`);
      env.note(`the exit code was not kept across the restart (reason "lost")`);
    }
    await destroyAndCheckFreed(env, a);
  },
};
