// specFromRun(): the `vmctl run [IMAGE] [-e K=V] -- CMD...` shorthand made into a spec. The
// orchestrator passes what it returns to validate(), and reports validate()'s field paths
// under "spec.": so the kit checks what the orchestrator would show users.
import { isDeepStrictEqual } from "node:util";
import type { RunInput } from "@vmctl/core/contract";
import type { Check } from "./check.js";
import { exitText, outputOf, tail, untilOutput } from "./check-env.js";
import { describe, fail, NotClaimed } from "./budget.js";

/** The field an error names, as the orchestrator reads it (ValidationError `.field`, or a VmctlError's `details.field`). */
function fieldOf(err: unknown): string | undefined {
  const e = err as { name?: unknown; field?: unknown; details?: { field?: unknown } } | null;
  if (typeof e?.field === "string") return e.field;
  return typeof e?.details?.field === "string" ? e.details.field : undefined;
}

export const specFromRunCheck: Check = {
  name: "run/spec-from-run",
  async run(env) {
    const factory = env.harness.factory;
    if (typeof factory.specFromRun !== "function") {
      throw new NotClaimed("the factory has no specFromRun: `vmctl run` on this target takes only --spec (users get \"this target needs --spec\")");
    }
    const problems: string[] = [];
    const fromRun = (input: RunInput, what: string): unknown => {
      try {
        const made = factory.specFromRun!(input);
        if (made instanceof Promise) problems.push(`${what}: specFromRun returned a Promise; it must be synchronous`);
        return made;
      } catch (err) {
        problems.push(`${what}: specFromRun threw ${describe(err)}`);
        return undefined;
      }
    };

    // An explicit spec and no shorthand: the explicit fields are the spec (they win), and it validates.
    const explicit = factory.validate(env.fixtures.specs.exitsWith(0).spec);
    const made = fromRun({ command: [], env: {}, mounts: [], copyOut: [], spec: explicit as Record<string, unknown> }, "an explicit spec (exitsWith(0)) and no shorthand");
    if (made !== undefined) {
      try {
        const again = factory.validate(made);
        if (!isDeepStrictEqual(JSON.parse(JSON.stringify(again)), JSON.parse(JSON.stringify(explicit)))) {
          env.note("an explicit spec with no shorthand validates, but differently from the spec alone (defaults added?)");
        }
      } catch (err) {
        problems.push(`an explicit spec (exitsWith(0)) and no shorthand: validate() refuses what specFromRun made of it: ${describe(err)}`);
      }
    }

    // Nothing at all (`vmctl run --target T`): refused naming a field of the spec, never the spec root as "spec".
    const empty = fromRun({ command: [], env: {}, mounts: [], copyOut: [], spec: {} }, "an empty shorthand");
    if (empty !== undefined) {
      try {
        factory.validate(empty);
      } catch (err) {
        const field = fieldOf(err);
        if (field === undefined) problems.push(`an empty shorthand: validate() threw ${describe(err)}, naming no field`);
        else if (field === "spec" || field.startsWith("spec.") || field.startsWith("spec[")) {
          problems.push(
            `an empty shorthand: the error names "${field}"; field paths are relative to the spec (the root is ""), ` +
              `and the orchestrator adds "spec." itself, so users would read "spec.${field}"`,
          );
        }
      }
    }

    // The fixture's shorthand, run for real: what `vmctl run` would do.
    const fixture = env.fixtures.specs.fromRun?.();
    if (fixture === undefined) {
      if (problems.length > 0) fail(problems.join("; "));
      env.note("no fixtures.specs.fromRun: the shorthand was not run (give one to run it)");
      return;
    }
    const { run, line } = fixture;
    const spec = fromRun({ ...(run.image === undefined ? {} : { image: run.image }), command: [...run.command], env: { ...run.env }, mounts: [], copyOut: [], spec: {} }, "fixtures.specs.fromRun");
    if (problems.length > 0) fail(problems.join("; "));
    const s = await env.service(spec, { prefix: "run" });
    await env.step(`prepare(${s.id})`, () => s.controller.prepare());
    await env.step(`start(${s.id})`, () => s.controller.start());
    await untilOutput(env, s, line);
    const exit = await env.step(`wait(${s.id})`, () => s.controller.wait());
    const code = fixture.code ?? 0;
    if (exit.code !== code) fail(`the service made from the shorthand ended with ${exitText(exit)}; expected code ${code}. Output: ${JSON.stringify(tail(await outputOf(s.controller)))}`);
  },
};
