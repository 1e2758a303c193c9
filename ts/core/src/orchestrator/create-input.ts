// Checks the target-independent part of a create request (name, labels, dependsOn,
// readiness); the spec itself is the target's to validate.
import { randomBytes } from "node:crypto";
import { ValidationError, VmctlError } from "../errors.js";
import type { ServiceFactory } from "../contract/target.js";
import type { CreateServiceInput, Readiness, ReadinessCheck, RunShorthand } from "./api.js";

export const NAME_PATTERN = /^[a-z0-9][a-z0-9_.-]{0,62}$/;
const LABEL_KEY = /^[A-Za-z0-9]([A-Za-z0-9_./-]{0,251}[A-Za-z0-9])?$/;

export interface CheckedCreateInput {
  readonly name?: string;
  readonly target: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly dependsOn: readonly string[];
  readonly readiness?: Readiness;
  readonly start: boolean;
}

export function checkCreateInput(input: CreateServiceInput): CheckedCreateInput {
  if (typeof input !== "object" || input === null) throw new ValidationError("request", "must be an object");
  const { name, target, labels = {}, dependsOn = [], readiness, start = false } = input;
  if (typeof target !== "string" || target === "") throw new ValidationError("target", "is required");
  if (name !== undefined && name !== "" && (typeof name !== "string" || !NAME_PATTERN.test(name))) {
    throw new ValidationError("name", `"${String(name)}" must match [a-z0-9][a-z0-9_.-]{0,62}`);
  }
  if (typeof labels !== "object" || labels === null || Array.isArray(labels)) {
    throw new ValidationError("labels", "must be a map of strings");
  }
  for (const [key, value] of Object.entries(labels)) {
    if (!LABEL_KEY.test(key)) throw new ValidationError(`labels.${key}`, "is not a valid label key");
    if (typeof value !== "string") throw new ValidationError(`labels.${key}`, "must be a string");
  }
  if (!Array.isArray(dependsOn)) throw new ValidationError("dependsOn", "must be a list of service ids or names");
  dependsOn.forEach((ref, i) => {
    if (typeof ref !== "string" || ref === "") throw new ValidationError(`dependsOn[${i}]`, "must be a service id or name");
  });
  const out: { -readonly [K in keyof CheckedCreateInput]: CheckedCreateInput[K] } = {
    target,
    labels: { ...labels },
    dependsOn: [...new Set(dependsOn)],
    start: start === true,
  };
  if (name !== undefined && name !== "") out.name = name;
  if (readiness !== undefined && readiness !== null) out.readiness = checkReadiness(readiness);
  return out;
}

function checkReadiness(readiness: Readiness): Readiness {
  const out: { check: ReadinessCheck; intervalMs?: number; timeoutMs?: number } = { check: checkCheck(readiness.check) };
  for (const field of ["intervalMs", "timeoutMs"] as const) {
    const value = readiness[field];
    if (value === undefined || value === 0) continue;
    if (!Number.isInteger(value) || value < 1) throw new ValidationError(`readiness.${field}`, "must be a positive integer");
    out[field] = value;
  }
  return out;
}

function checkCheck(check: ReadinessCheck | undefined): ReadinessCheck {
  const at = "readiness.check";
  if (typeof check !== "object" || check === null) throw new ValidationError(at, "is required (tcp, http or command)");
  switch (check.kind) {
    case "tcp": {
      if (!Number.isInteger(check.port) || check.port < 1 || check.port > 65535) {
        throw new ValidationError(`${at}.port`, "must be a port number 1-65535");
      }
      if (check.host !== undefined && (typeof check.host !== "string" || check.host === "")) {
        throw new ValidationError(`${at}.host`, "must be a host name or address");
      }
      return check.host ? { kind: "tcp", host: check.host, port: check.port } : { kind: "tcp", port: check.port };
    }
    case "http": {
      let url: URL;
      try {
        url = new URL(check.url);
      } catch {
        throw new ValidationError(`${at}.url`, "must be an absolute http(s) URL");
      }
      if (url.protocol !== "http:" && url.protocol !== "https:") throw new ValidationError(`${at}.url`, "must be http or https");
      const { expectStatus } = check;
      if (expectStatus !== undefined && expectStatus !== 0 && (!Number.isInteger(expectStatus) || expectStatus < 100 || expectStatus > 599)) {
        throw new ValidationError(`${at}.expectStatus`, "must be an HTTP status 100-599");
      }
      return expectStatus ? { kind: "http", url: check.url, expectStatus } : { kind: "http", url: check.url };
    }
    case "command": {
      if (!Array.isArray(check.args) || check.args.length === 0 || !check.args.every((a) => typeof a === "string")) {
        throw new ValidationError(`${at}.args`, "must be a non-empty list of strings");
      }
      return { kind: "command", args: [...check.args] };
    }
    default:
      throw new ValidationError(`${at}.kind`, `must be "tcp", "http" or "command"`);
  }
}

/** A new service id: 16 hex digits. */
export function newServiceId(): string {
  return randomBytes(8).toString("hex");
}

/** A name for a service created without one: "<target>-<first 8 of id>". */
export function generatedName(target: string, id: string): string {
  const prefix = target.toLowerCase().replace(/[^a-z0-9_.-]/g, "-").replace(/^[^a-z0-9]+/, "").slice(0, 40);
  return prefix === "" ? `svc-${id.slice(0, 8)}` : `${prefix}-${id.slice(0, 8)}`;
}

/**
 * An error from a target's validate() as a ValidationError with its field under "spec".
 * Recognised structurally (name "ValidationError" and a string `field`) so plugins need
 * not share this module's class identity.
 */
export function specError(err: unknown): VmctlError {
  const e = err as { name?: unknown; field?: unknown; message?: unknown } | null;
  if (e !== null && typeof e === "object" && e.name === "ValidationError" && typeof e.field === "string") {
    const message = typeof e.message === "string" ? e.message : "is invalid";
    const problem = message.startsWith(`${e.field}: `) ? message.slice(e.field.length + 2) : message;
    const field = e.field === "" ? "spec" : e.field.startsWith("[") ? `spec${e.field}` : `spec.${e.field}`;
    return new ValidationError(field, problem);
  }
  return new ValidationError("spec", err instanceof Error ? err.message : String(err));
}

/**
 * The untrusted spec a target makes from the `vmctl run` shorthand (explicit `spec`
 * fields win). A target without `specFromRun` needs an explicit spec.
 */
export function specFromRun(factory: ServiceFactory, run: RunShorthand, spec: unknown): unknown {
  if (typeof run !== "object" || run === null) throw new ValidationError("run", "must be an object");
  const { image, command = [], env = {} } = run;
  if (image !== undefined && (typeof image !== "string" || image === "")) throw new ValidationError("run.image", "must be a non-empty string");
  if (!Array.isArray(command)) throw new ValidationError("run.command", "must be a list of strings");
  command.forEach((arg, i) => {
    if (typeof arg !== "string") throw new ValidationError(`run.command[${i}]`, "must be a string");
  });
  if (typeof env !== "object" || env === null || Array.isArray(env)) throw new ValidationError("run.env", "must be a map of strings");
  for (const [key, value] of Object.entries(env)) {
    if (key === "" || key.includes("=")) throw new ValidationError(`run.env.${key}`, "is not a valid variable name");
    if (typeof value !== "string") throw new ValidationError(`run.env.${key}`, "must be a string");
  }
  if (spec !== undefined && spec !== null && (typeof spec !== "object" || Array.isArray(spec))) {
    throw new ValidationError("spec", "must be an object");
  }
  if (factory.specFromRun === undefined) {
    throw new ValidationError("spec", `target ${factory.target} takes no image or command shorthand: this target needs --spec`);
  }
  try {
    return factory.specFromRun({
      ...(image === undefined ? {} : { image }),
      command: [...command],
      env: { ...env },
      spec: (spec ?? {}) as Record<string, unknown>,
    });
  } catch (err) {
    throw specError(err);
  }
}
