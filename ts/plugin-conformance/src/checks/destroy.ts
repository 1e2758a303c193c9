// destroy(): idempotent, and it frees everything the plugin recorded — a running
// service and one that has exited.
import type { Check } from "./check.js";
import { destroyAndCheckFreed, startRunning } from "./check-env.js";
import { fail } from "./budget.js";

export const destroyRunning: Check = {
  name: "destroy/running",
  async run(env) {
    const { spec, line } = env.fixtures.specs.runsUntilStopped();
    const s = await env.service(spec);
    await startRunning(env, s, line);
    if (s.ctx.resources.history().length === 0) {
      fail("a running service recorded nothing in its ledger: every resource must be intended before it is made");
    }
    await destroyAndCheckFreed(env, s);
  },
};

export const destroyExited: Check = {
  name: "destroy/exited",
  async run(env) {
    const { spec } = env.fixtures.specs.exitsWith(0);
    const s = await env.service(spec);
    await env.step(`prepare(${s.id})`, () => s.controller.prepare());
    await env.step(`start(${s.id})`, () => s.controller.start());
    await env.step(`wait(${s.id})`, () => s.controller.wait());
    await destroyAndCheckFreed(env, s);
  },
};

export const destroyCreated: Check = {
  name: "destroy/never-started",
  async run(env) {
    const { spec } = env.fixtures.specs.runsUntilStopped();
    const s = await env.service(spec);
    await env.step(`prepare(${s.id})`, () => s.controller.prepare());
    await destroyAndCheckFreed(env, s);
  },
};
