// The core lifecycle: create → prepare → start → state → logs → wait → exit code.
import type { Check } from "./check.js";
import type { CheckEnv, Service } from "./check-env.js";
import { exitText, outputOf, tail, untilOutput } from "./check-env.js";
import { fail } from "./budget.js";

/** Runs `s` (made from exitsWith(code)) to its exit and checks what every step reports. */
export async function runToExit(env: CheckEnv, s: Service, code: number, line: string): Promise<void> {
  const c = s.controller;
  const before = await env.step(`state(${s.id}) before start`, () => c.state());
  if (before.phase !== "created") fail(`state() right after create is "${before.phase}", expected "created"`);
  await env.step(`prepare(${s.id})`, () => c.prepare());
  await env.step(`prepare(${s.id}) again (idempotent)`, () => c.prepare());
  await env.step(`start(${s.id})`, () => c.start());
  const after = await env.step(`state(${s.id}) after start`, () => c.state());
  if (!["starting", "running", "exited"].includes(after.phase)) {
    fail(`state() after start() resolved is "${after.phase}", expected running (or starting, or exited for a quick workload)`);
  }
  await env.step(`start(${s.id}) again (idempotent)`, () => c.start()).catch((err: unknown) => {
    // A second start of a service that has already exited may be refused ("exited is final").
    if (after.phase !== "exited") throw err;
  });
  await untilOutput(env, s, line);
  const exit = await env.step(`wait(${s.id})`, () => c.wait());
  if (exit.code !== code) fail(`wait() says ${exitText(exit)}; expected code ${code}. Output: ${JSON.stringify(tail(await outputOf(c)))}`);
  if (exit.reason !== "exited") fail(`wait() says reason "${exit.reason}"; a workload that ended on its own has reason "exited"`);
  if (!(exit.at instanceof Date) || Number.isNaN(exit.at.getTime())) fail(`wait()'s exit.at is not a valid Date`);
  const final = await env.step(`state(${s.id}) after exit`, () => c.state());
  if (final.phase !== "exited") fail(`state() after wait() resolved is "${final.phase}", expected "exited"`);
  if (final.exit?.code !== code) fail(`state().exit after exit says ${exitText(final.exit)}, wait() said code ${code}`);
  const again = await env.step(`wait(${s.id}) again`, () => c.wait());
  if (again.code !== code) fail(`a second wait() says ${exitText(again)}`);
  const text = await env.step(`logs(${s.id}) after exit`, () => outputOf(c));
  if (!text.includes(line)) fail(`logs() after exit lost the line ${JSON.stringify(line)}: ${JSON.stringify(tail(text))}`);
}

export function exitCodeCheck(code: number): Check {
  return {
    name: `lifecycle/exit-${code}`,
    async run(env) {
      const { spec, line } = env.fixtures.specs.exitsWith(code);
      const s = await env.service(spec);
      await runToExit(env, s, code, line);
      const record = s.controller.record();
      try {
        JSON.stringify(record);
      } catch {
        fail("record() is not JSON-serialisable");
      }
    },
  };
}
