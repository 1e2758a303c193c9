// The spec: { args: string[], env?: { NAME: value }, cwd?: "/abs/path" }. Checked strictly
// (unknown fields refused) and every problem names its field path. The field checks come
// from @vmctl/core/target-kit, so the wording matches the built-in targets'.
//
// Field paths are relative to the spec: "args", "env.PATH", and "" for the spec itself.
// The orchestrator reports them under "spec." ("spec.args", and "spec" for the root), so
// never name the root "spec": users would read "spec.spec: must be an object".
import { ValidationError } from "@vmctl/core/contract";
import { commandArgs, envVars, record, refuseUnknown, str } from "@vmctl/core/target-kit";

export type ProcessSpec = {
  args: string[];
  env?: Record<string, string>;
  cwd?: string;
};

const FIELDS = ["args", "env", "cwd"];

export function parseSpec(input: unknown): ProcessSpec {
  const obj = record(input, "");
  refuseUnknown(obj, FIELDS);
  const spec: ProcessSpec = { args: commandArgs(obj.args) };
  if (obj.env !== undefined) spec.env = envVars(obj.env, "env", { identifiers: true });
  if (obj.cwd !== undefined) {
    // A host directory, but not checked for existence here: the spawn reports a missing one.
    const cwd = str(obj.cwd, "cwd");
    if (!cwd.startsWith("/")) throw new ValidationError("cwd", "must be an absolute path");
    spec.cwd = cwd;
  }
  return spec;
}
