// stop(): graceful (a workload that honours the polite stop ends, reason "stopped") and
// forced (one that ignores it ends within timeoutMs + a margin; stop never hangs).
import type { Check } from "./check.js";
import { exitText, startRunning } from "./check-env.js";
import { CheckFailure, fail } from "./budget.js";

export const stopGraceful: Check = {
  name: "stop/graceful",
  async run(env) {
    const { spec, line } = env.fixtures.specs.runsUntilStopped();
    const s = await env.service(spec);
    await startRunning(env, s, line);
    const { stopMs, forceMarginMs } = env.timeouts;
    await env.step(`stop(${s.id}, { timeoutMs: ${stopMs} })`, () => s.controller.stop({ timeoutMs: stopMs }), stopMs + forceMarginMs);
    const state = await env.step(`state(${s.id}) after stop`, () => s.controller.state());
    if (state.phase !== "exited") fail(`stop() resolved but state() is "${state.phase}"; stop resolves once the service has exited`);
    const exit = await env.step(`wait(${s.id}) after stop`, () => s.controller.wait());
    if (exit.reason !== "stopped") fail(`a stopped service reports ${exitText(exit)}; expected reason "stopped"`);
    await env.step(`stop(${s.id}) again (idempotent)`, () => s.controller.stop({ timeoutMs: stopMs }), stopMs + forceMarginMs);
  },
};

export const stopForced: Check = {
  name: "stop/forced",
  async run(env) {
    const { spec, line } = env.fixtures.specs.ignoresPoliteStop();
    const s = await env.service(spec);
    await startRunning(env, s, line);
    const { stopMs, forceMarginMs } = env.timeouts;
    const budget = stopMs + forceMarginMs;
    try {
      await env.step(`stop(${s.id}, { timeoutMs: ${stopMs} })`, () => s.controller.stop({ timeoutMs: stopMs }), budget);
    } catch (err) {
      if (err instanceof CheckFailure) {
        const state = await s.controller.state().catch(() => undefined);
        fail(
          `stop({ timeoutMs: ${stopMs} }) of a workload that ignores the polite stop had not returned after ${budget} ms ` +
            `(phase now ${state?.phase ?? "unknown"}): stop must force the service once timeoutMs has passed`,
        );
      }
      throw err;
    }
    const state = await env.step(`state(${s.id}) after stop`, () => s.controller.state());
    if (state.phase !== "exited") fail(`stop() resolved but state() is "${state.phase}"; a forced stop resolves once the service has exited`);
    const exit = await env.step(`wait(${s.id}) after stop`, () => s.controller.wait());
    if (exit.reason !== "stopped") fail(`a force-stopped service reports ${exitText(exit)}; expected reason "stopped"`);
  },
};
