// The spec: { args: string[], env?: { NAME: value }, cwd?: "/abs/path" }. Checked strictly
// (unknown fields refused) and every problem names its field path.
import { ValidationError } from "@vmctl/core/contract";

export type ProcessSpec = {
  args: string[];
  env?: Record<string, string>;
  cwd?: string;
};

const FIELDS = ["args", "env", "cwd"];

export function parseSpec(input: unknown): ProcessSpec {
  if (typeof input !== "object" || input === null || Array.isArray(input)) throw new ValidationError("spec", "must be an object");
  const obj = input as Record<string, unknown>;
  for (const key of Object.keys(obj)) if (!FIELDS.includes(key)) throw new ValidationError(key, "unknown field");
  if (!Array.isArray(obj.args) || obj.args.length === 0) throw new ValidationError("args", "must be a non-empty array of strings");
  const args = obj.args.map((arg, i) => {
    if (typeof arg !== "string") throw new ValidationError(`args[${i}]`, "must be a string");
    return arg;
  });
  if (args[0] === "") throw new ValidationError("args[0]", "must name a command");
  const spec: ProcessSpec = { args };
  if (obj.env !== undefined) {
    if (typeof obj.env !== "object" || obj.env === null || Array.isArray(obj.env)) throw new ValidationError("env", "must be an object of strings");
    spec.env = {};
    for (const [name, value] of Object.entries(obj.env)) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new ValidationError(`env.${name}`, "is not a valid variable name");
      if (typeof value !== "string") throw new ValidationError(`env.${name}`, "must be a string");
      spec.env[name] = value;
    }
  }
  if (obj.cwd !== undefined) {
    if (typeof obj.cwd !== "string" || !obj.cwd.startsWith("/")) throw new ValidationError("cwd", "must be an absolute path");
    spec.cwd = obj.cwd;
  }
  return spec;
}
