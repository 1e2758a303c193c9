// adopt(): after an orchestrator restart, a NEW factory reattaches to a running service,
// to an exited one, and to one whose start was interrupted half-way.
//
// Given the plugin's package directory (the CLI always is), the first orchestrator is a
// fresh process (restart/first-orchestrator) that the kit kills with SIGKILL, as a daemon
// crash would: a target whose services die with the process that made them fails here.
// Given a registration or factory in-process, the restart is simulated in the kit's
// process: close() of the factory that made the service, a new factory from the same
// init and state dir, a new context over the same serviceDir seeded with the ledger.
// Either way adopt() gets the record the engine persists: the spec, record() as JSON and
// every unreleased ledger entry.
import type { ControllerRecord, ExitInfo, JsonValue, ServiceFactory } from "@vmctl/core/contract";
import { holdersOf } from "../harness/host-processes.js";
import type { HarnessContext } from "../harness/conformance-harness.js";
import { crashAfter } from "../restart/fresh-process.js";
import type { Check } from "./check.js";
import type { CheckEnv, Service } from "./check-env.js";
import { destroyAndCheckFreed, exitText, outputOf, startRunning, tail, untilOutput, untilPhase } from "./check-env.js";
import { describe, fail, NotClaimed, until } from "./budget.js";

/** adopt() of `record` on a new factory, over `ctx`; tracked for teardown. */
async function adoptOnNewFactory(env: CheckEnv, record: ControllerRecord, ctx: HarnessContext, allowNone = false): Promise<Service | undefined> {
  const fresh = await env.step("init of a new factory (restart)", () => env.harness.newFactory());
  const adopted = await env.step(`adopt(${record.id})`, () => fresh.adopt(record, ctx));
  if (adopted === undefined) {
    if (allowNone && record.resources.length === 0) return undefined;
    fail(`adopt() returned undefined although the ledger holds ${record.resources.map((r) => `${r.kind} ${r.key}`).join(", ") || "nothing"}: nothing could free them`);
  }
  if (adopted.id !== record.id) fail(`adopt() returned a controller whose id is ${JSON.stringify(adopted.id)}, not ${record.id}`);
  const service: Service = { id: record.id, ctx, controller: adopted, spec: record.spec };
  env.track(service);
  return service;
}

/** In-process: closes `old`, makes a new factory, and adopts `s` through it. */
async function restartInProcess(env: CheckEnv, s: Service, old: ServiceFactory): Promise<Service> {
  let data: JsonValue;
  try {
    data = JSON.parse(JSON.stringify(s.controller.record())) as JsonValue;
  } catch (err) {
    fail(`record() is not JSON-serialisable: ${describe(err)}`);
  }
  const record: ControllerRecord = { id: s.id, target: old.target, spec: s.spec, data, resources: s.ctx.resources.list() };
  // The orchestrator going away: factory-wide resources are released, services run on.
  await env.step("close() of the old factory", () => old.close?.());
  return (await adoptOnNewFactory(env, record, env.harness.context(s.id, record.resources)))!;
}

/** A running service (runsUntilStopped), adopted after a restart. */
async function adoptedRunning(env: CheckEnv): Promise<Service> {
  const { spec, line } = env.fixtures.specs.runsUntilStopped();
  if (env.pluginPath !== undefined) {
    const crashed = await crashAfter(env, "running", spec, line);
    const a = (await adoptOnNewFactory(env, crashed.record, crashed.ctx))!;
    const died = (phase: string, exit: ExitInfo | undefined): never =>
      fail(
        `the adopted controller says "${phase}" (${exitText(exit)}) for a service that ran when the orchestrator process ` +
          `that started it was killed (SIGKILL): a service must outlive the orchestrator (detach it: its own session, no pipes to the daemon)`,
      );
    const state = await env.step(`state(${a.id}) after adopt`, () => a.controller.state());
    if (state.phase !== "running") died(state.phase, state.exit);
    // Still alive a moment later: its output keeps growing (it prints at least every ~100 ms).
    const before = (await env.step(`logs(${a.id}) after adopt`, () => outputOf(a.controller))).length;
    await until(env.timeouts.stepMs, `the output of ${a.id} to grow after the restart`, async () => {
      const now = await a.controller.state();
      if (now.phase !== "running") died(now.phase, now.exit);
      return (await outputOf(a.controller)).length > before ? true : undefined;
    });
    return a;
  }
  const old = await env.step("init of a factory", () => env.harness.newFactory());
  const s = await env.service(spec, { factory: old });
  await startRunning(env, s, line);
  const a = await restartInProcess(env, s, old);
  const state = await env.step(`state(${a.id}) after adopt`, () => a.controller.state());
  if (state.phase !== "running") fail(`the adopted controller says "${state.phase}" (${exitText(state.exit)}) for a service that still runs`);
  return a;
}

export const adoptRunning: Check = {
  name: "adopt/running",
  async run(env) {
    const a = await adoptedRunning(env);
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
    const code = env.exitCodes.find((c) => c !== 0) ?? 0;
    const { spec } = env.fixtures.specs.exitsWith(code);
    let a: Service;
    if (env.pluginPath !== undefined) {
      const crashed = await crashAfter(env, "exited", spec);
      a = (await adoptOnNewFactory(env, crashed.record, crashed.ctx))!;
    } else {
      const old = await env.step("init of a factory", () => env.harness.newFactory());
      const s = await env.service(spec, { factory: old });
      await env.step(`prepare(${s.id})`, () => s.controller.prepare());
      await env.step(`start(${s.id})`, () => s.controller.start());
      await env.step(`wait(${s.id})`, () => s.controller.wait());
      a = await restartInProcess(env, s, old);
    }
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

/**
 * The orchestrator process is killed inside start(), right after the target's first
 * intend() there is on disk (the resource recorded, perhaps not made yet). A new factory
 * adopts the service; as the engine does, a service still "created" is started again.
 * The service must then run to its exit code (or be reported exited, reason "lost"), and
 * destroy() must free everything, including whatever the dead start() made.
 */
export const adoptInterruptedStart: Check = {
  name: "adopt/interrupted-start",
  async run(env) {
    if (env.pluginPath === undefined) {
      throw new NotClaimed("needs the plugin's package directory (pluginPath, or the vmctl-conformance CLI): the kit kills a fresh orchestrator process inside start()");
    }
    const code = env.exitCodes.find((c) => c !== 0) ?? 0;
    const { spec, line } = env.fixtures.specs.exitsWith(code);
    const crashed = await crashAfter(env, "interrupted", spec);
    env.note(
      crashed.killedAtIntend === undefined
        ? "start() recorded nothing in the ledger: the process was killed after start() returned"
        : `killed inside start() right after intend(${crashed.killedAtIntend.kind} ${crashed.killedAtIntend.key})`,
    );
    const a = await adoptOnNewFactory(env, crashed.record, crashed.ctx, true);
    if (a === undefined) {
      // Nothing recorded, nothing adopted: then nothing may be left either.
      const holders = holdersOf(crashed.ctx.serviceDir);
      if (holders.size > 0) fail(`adopt() returned undefined, but processes still hold the serviceDir: ${[...holders.values()].join(", ")}`);
      return;
    }
    const state = await env.step(`state(${a.id}) after adopt`, () => a.controller.state());
    if (state.phase === "created") {
      // What the engine does with a start that had not finished: start it again.
      await env.step(`start(${a.id}) again after the restart`, () => a.controller.start());
      await untilOutput(env, a, line);
    } else if (state.phase === "paused") {
      fail(`the adopted controller says "paused" for a service whose start was interrupted`);
    }
    const exit = await env.step(`wait(${a.id}) through the adopted controller`, () => a.controller.wait());
    if (exit.code !== code) {
      if (exit.reason !== "lost") {
        fail(`after the interrupted start, the adopted controller reports ${exitText(exit)}; expected code ${code}. Output: ${JSON.stringify(tail(await outputOf(a.controller)))}`);
      }
      env.note(`the interrupted start was reported as lost (phase "${state.phase}" after adopt), not resumed`);
    }
    await destroyAndCheckFreed(env, a);
  },
};
