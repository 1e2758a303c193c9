// The target's declared host requirements (`TargetRegistration.requires`): what `vmctl
// doctor` reads without calling init. Well formed, by the same parser doctor uses, and
// evaluated here as doctor would (a declared requirement this host lacks, while init made
// a factory, is noted: the declaration may overstate, or the host lacks a feature).
import { evaluateRequirements, parseRequirements } from "@vmctl/core/target-kit";
import type { Check } from "./check.js";
import { describe, fail, NotClaimed } from "./budget.js";

export const requiresCheck: Check = {
  name: "registration/requires",
  async run(env) {
    const declared = env.registration;
    if (declared === undefined) throw new NotClaimed("given a factory, not a registration: no requires to check");
    if (declared.requires === undefined) {
      env.note("declares no host requirements (requires): vmctl doctor can list none for this target");
      return;
    }
    let requirements;
    try {
      requirements = parseRequirements(declared.requires, "requires");
    } catch (err) {
      fail(`the registration's requires is malformed: ${describe(err)}`);
    }
    const statuses = await env.step("evaluating requires", () => evaluateRequirements(requirements, env.harness.target, { options: env.harness.targetOptions }));
    const unmet = statuses.filter((s) => !s.met);
    if (requirements.length === 0) {
      env.note("declares that it needs nothing on the host (requires: [])");
      return;
    }
    env.note(
      `${requirements.length} host requirement(s) well formed` +
        (unmet.length === 0 ? ", all met here" : `; not met here: ${unmet.map((s) => `${s.name}${s.requirement.optional ? " (optional)" : ""}: ${s.problem}`).join("; ")}`),
    );
  },
};
