// validate(): bad specs are refused with a ValidationError naming the field path; the
// fixture specs are accepted and come back as JSON (the orchestrator persists them).
import { isDeepStrictEqual } from "node:util";
import type { Check } from "./check.js";
import { describe, fail } from "./budget.js";

/** The field an error names: `.field`, `.details.field`, or the "<field>: problem" message prefix. */
function namesField(err: unknown, field: string): { ok: boolean; named: string } {
  const e = err as { field?: unknown; details?: { field?: unknown }; message?: unknown } | null;
  const named = typeof e?.field === "string" ? e.field : typeof e?.details?.field === "string" ? e.details.field : undefined;
  const strip = (f: string): string => f.replace(/^spec\./, "");
  if (named !== undefined) return { ok: strip(named) === strip(field), named };
  const message = typeof e?.message === "string" ? e.message : "";
  return { ok: message.startsWith(`${field}:`) || message.startsWith(`spec.${field}:`), named: `(no field; message ${JSON.stringify(message)})` };
}

export const validateRejectsInvalid: Check = {
  name: "validate/rejects-invalid",
  async run(env) {
    const invalid = env.fixtures.specs.invalid;
    if (invalid.length === 0) fail("fixtures.specs.invalid is empty: give at least one bad spec and the field it must name");
    const problems: string[] = [];
    for (const { spec, field } of invalid) {
      let value: unknown;
      try {
        value = env.harness.factory.validate(spec);
      } catch (err) {
        const name = (err as { name?: unknown } | null)?.name;
        const code = (err as { code?: unknown } | null)?.code;
        if (name !== "ValidationError" || code !== "INVALID_ARGUMENT") {
          problems.push(`field ${field}: threw ${describe(err)}, not a ValidationError (name "ValidationError", code INVALID_ARGUMENT)`);
          continue;
        }
        const { ok, named } = namesField(err, field);
        if (!ok) problems.push(`field ${field}: the ValidationError names ${named}`);
        continue;
      }
      problems.push(`field ${field}: validate() accepted ${JSON.stringify(spec)}${value instanceof Promise ? " (and returned a Promise: validate must be synchronous)" : ""}`);
    }
    if (problems.length > 0) fail(problems.join("; "));
    env.note(`${invalid.length} bad spec(s) refused, each naming its field`);
  },
};

export const validateAcceptsValid: Check = {
  name: "validate/accepts-valid",
  async run(env) {
    const { specs } = env.fixtures;
    const cases: [string, unknown][] = [
      ...env.exitCodes.map((code): [string, unknown] => [`exitsWith(${code})`, specs.exitsWith(code).spec]),
      ["runsUntilStopped()", specs.runsUntilStopped().spec],
      ["ignoresPoliteStop()", specs.ignoresPoliteStop().spec],
    ];
    const problems: string[] = [];
    for (const [what, spec] of cases) {
      let value: unknown;
      try {
        value = env.harness.factory.validate(spec);
      } catch (err) {
        problems.push(`${what}: refused: ${describe(err)}`);
        continue;
      }
      if (value instanceof Promise) {
        problems.push(`${what}: validate() returned a Promise; it must be synchronous`);
        continue;
      }
      let copy: unknown;
      try {
        copy = JSON.parse(JSON.stringify(value));
      } catch (err) {
        problems.push(`${what}: the validated spec is not JSON-serialisable: ${describe(err)}`);
        continue;
      }
      if (!isDeepStrictEqual(copy, value)) problems.push(`${what}: the validated spec does not survive JSON (the orchestrator persists it as JSON)`);
      // Validating what validate() returned must give the same spec (the engine re-validates on adopt).
      try {
        const again = env.harness.factory.validate(copy);
        if (!isDeepStrictEqual(JSON.parse(JSON.stringify(again)), copy)) problems.push(`${what}: validate(validate(spec)) differs from validate(spec)`);
      } catch (err) {
        problems.push(`${what}: validate() refuses its own output: ${describe(err)}`);
      }
    }
    if (problems.length > 0) fail(problems.join("; "));
  },
};
