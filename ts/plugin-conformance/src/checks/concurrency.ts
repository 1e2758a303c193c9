// Concurrent lifecycles on one factory don't interfere: each sees its own exit code and
// its own output, never another's.
import type { Check } from "./check.js";
import { outputOf, tail } from "./check-env.js";
import { runToExit } from "./lifecycle.js";
import { describe, fail } from "./budget.js";

/** Distinct codes for n services, avoiding 0 so a default exit cannot pass for one. */
function codesFor(n: number): number[] {
  return Array.from({ length: n }, (_, i) => 11 + i * 10);
}

export const concurrentLifecycles: Check = {
  name: "concurrency/parallel-lifecycles",
  async run(env) {
    const codes = codesFor(env.concurrency);
    const fixtures = codes.map((code) => ({ code, ...env.fixtures.specs.exitsWith(code) }));
    const services = await Promise.all(fixtures.map((f) => env.service(f.spec, { prefix: `par${f.code}` })));
    const results = await Promise.allSettled(services.map((s, i) => runToExit(env, s, fixtures[i]!.code, fixtures[i]!.line)));
    const problems = results.flatMap((r, i) => (r.status === "rejected" ? [`${services[i]!.id} (exit ${fixtures[i]!.code}): ${describe(r.reason)}`] : []));
    if (problems.length > 0) fail(problems.join("; "));
    // Each output holds its own line and none of the others' (when the lines differ).
    const lines = fixtures.map((f) => f.line);
    if (new Set(lines).size === lines.length) {
      for (const [i, s] of services.entries()) {
        const text = await outputOf(s.controller);
        const foreign = lines.filter((l, j) => j !== i && text.includes(l) && !lines[i]!.includes(l));
        if (foreign.length > 0) fail(`${s.id}'s output holds another service's line(s) ${JSON.stringify(foreign)}: ${JSON.stringify(tail(text))}`);
      }
    } else {
      env.note("exitsWith() prints the same line for every code, so cross-talk in output could not be checked");
    }
  },
};
