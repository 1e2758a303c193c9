// Checks the target-independent part of a create request (name, labels, dependsOn,
// readiness, request id, the spec's size and shape); the spec's content is the target's
// to validate (validatedSpec asks it, naming the field it refuses). Limits come from
// contract/limits.ts.
import { createHash, randomBytes } from "node:crypto";
import { echo, entriesByKey, LABEL_KEY_PATTERN, LIMITS, NAME_PATTERN, SERVICE_ID_PATTERN } from "../contract/limits.js";
import { isErrorCode, ValidationError, VmctlError } from "../errors.js";
import type { ServiceFactory } from "../contract/target.js";
import type { JsonValue } from "../contract/types.js";
import type { PluginRegistry } from "../plugins/plugin-registry.js";
import type { CreateServiceInput, Readiness, ReadinessCheck, RunShorthand } from "./api.js";
import { checkArgs, checkJsonShape, checkRef, hasControlCharacter, utf8Bytes } from "./request-checks.js";
import { containerPath, mounts, str, type StringCheck } from "../target-kit/spec-fields.js";
import { checkNetworkName, checkPolicy, checkPorts, NO_NETWORK } from "../network/network-input.js";
import type { EgressPolicy, PublishedPort } from "../network/types.js";

/** A path a request names: a string without NUL, at most PATH_MAX bytes. */
const pathText: StringCheck = (value, field) => {
  const text = str(value, field);
  if (utf8Bytes(text) > 4096) throw new ValidationError(field, "is longer than 4096 bytes");
  return text;
};

/** A file name's longest (NAME_MAX), in bytes. */
const NAME_MAX_BYTES = 255;

/** An absolute path inside a service (no "..", no name longer than Linux allows), normalised. */
export function checkServicePath(value: unknown, field: string): string {
  const path = containerPath(value, field, pathText);
  if (path.split("/").some((name) => utf8Bytes(name) > NAME_MAX_BYTES)) throw new ValidationError(field, `has a name longer than ${NAME_MAX_BYTES} bytes`);
  return path;
}

export { NAME_PATTERN };
const REQUEST_ID = /^[A-Za-z0-9_.:-]{1,64}$/;

export interface CheckedCreateInput {
  readonly name?: string;
  readonly target: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly dependsOn: readonly string[];
  readonly readiness?: Readiness;
  readonly start: boolean;
  readonly requestId?: string;
  /** Absent: no network. */
  readonly network?: NetworkRequest;
}

/** What a create asks of networking, checked (the network's existence is the engine's to check). */
export interface NetworkRequest {
  readonly network: string;
  readonly ports: readonly PublishedPort[];
  readonly policy?: EgressPolicy;
}

/** `network`, `ports` and `networkPolicy` of a create; ports or a policy without a network are refused. */
export function checkNetworkRequest(input: Pick<CreateServiceInput, "network" | "ports" | "networkPolicy">): NetworkRequest | undefined {
  const { network, ports, networkPolicy } = input;
  const name = network === undefined || network === null || network === "" ? NO_NETWORK : checkNetworkName(network, "network", { allowNone: true });
  const checkedPorts = checkPorts(ports, "ports");
  const policy = networkPolicy === undefined || networkPolicy === null ? undefined : checkPolicy(networkPolicy, "networkPolicy");
  if (name === NO_NETWORK) {
    if (checkedPorts.length > 0) throw new ValidationError("ports", "needs a network: the service has none (give network)");
    if (policy !== undefined) throw new ValidationError("networkPolicy", "needs a network: the service has none (give network)");
    return undefined;
  }
  return { network: name, ports: checkedPorts, ...(policy === undefined ? {} : { policy }) };
}

export function checkCreateInput(input: CreateServiceInput): CheckedCreateInput {
  if (typeof input !== "object" || input === null) throw new ValidationError("request", "must be an object");
  const { name, target, labels = {}, dependsOn = [], readiness, start = false, requestId } = input;
  if (typeof target !== "string" || target === "") throw new ValidationError("target", "is required");
  if (target.length > LIMITS.targetLength || hasControlCharacter(target)) {
    throw new ValidationError("target", `${echo(target)} is not a target name`);
  }
  if (name !== undefined && name !== "") {
    if (typeof name !== "string" || !NAME_PATTERN.test(name)) {
      throw new ValidationError("name", `${echo(name)} must match [a-z0-9][a-z0-9_.-]{0,62}`);
    }
    if (SERVICE_ID_PATTERN.test(name)) {
      throw new ValidationError("name", `${echo(name)} has the form of a service id (16 hex digits); choose another name`);
    }
  }
  if (requestId !== undefined && requestId !== "" && (typeof requestId !== "string" || !REQUEST_ID.test(requestId))) {
    throw new ValidationError("requestId", `${echo(requestId)} must be 1-64 of [A-Za-z0-9_.:-] (e.g. a UUID)`);
  }
  const checkedLabels = checkLabels(labels);
  if (!Array.isArray(dependsOn)) throw new ValidationError("dependsOn", "must be a list of service ids or names");
  if (dependsOn.length > LIMITS.dependsOnCount) {
    throw new ValidationError("dependsOn", `has ${dependsOn.length} entries; at most ${LIMITS.dependsOnCount}`);
  }
  dependsOn.forEach((ref, i) => checkRef(ref, `dependsOn[${i}]`));
  const out: { -readonly [K in keyof CheckedCreateInput]: CheckedCreateInput[K] } = {
    target,
    labels: checkedLabels,
    dependsOn: [...new Set(dependsOn)],
    start: start === true,
  };
  if (name !== undefined && name !== "") out.name = name;
  if (requestId !== undefined && requestId !== "") out.requestId = requestId;
  if (readiness !== undefined && readiness !== null) out.readiness = checkReadiness(readiness);
  const network = checkNetworkRequest(input);
  if (network !== undefined) out.network = network;
  return out;
}

function checkLabels(labels: unknown): Record<string, string> {
  if (typeof labels !== "object" || labels === null || Array.isArray(labels)) {
    throw new ValidationError("labels", "must be a map of strings");
  }
  const entries = entriesByKey(labels as Record<string, unknown>);
  if (entries.length > LIMITS.labelCount) throw new ValidationError("labels", `has ${entries.length} labels; at most ${LIMITS.labelCount}`);
  let total = 0;
  const out: Record<string, string> = {};
  for (const [key, value] of entries) {
    const at = `labels.${key.length > LIMITS.echoLength ? echo(key) : key}`;
    if (!LABEL_KEY_PATTERN.test(key)) throw new ValidationError(at, `${echo(key)} is not a valid label key ([A-Za-z0-9_./-], at most ${LIMITS.labelKeyLength})`);
    if (typeof value !== "string") throw new ValidationError(at, "must be a string");
    if (hasControlCharacter(value)) throw new ValidationError(at, "must not contain control characters");
    const bytes = utf8Bytes(value);
    if (bytes > LIMITS.labelValueBytes) throw new ValidationError(at, `is ${bytes} bytes; at most ${LIMITS.labelValueBytes}`);
    total += bytes + key.length;
    out[key] = value;
  }
  if (total > LIMITS.labelsTotalBytes) throw new ValidationError("labels", `total ${total} bytes; at most ${LIMITS.labelsTotalBytes}`);
  return out;
}

function checkReadiness(readiness: Readiness): Readiness {
  const out: { check: ReadinessCheck; intervalMs?: number; timeoutMs?: number } = { check: checkCheck(readiness.check) };
  const max = { intervalMs: LIMITS.readinessIntervalMs, timeoutMs: LIMITS.readinessTimeoutMs } as const;
  for (const field of ["intervalMs", "timeoutMs"] as const) {
    const value = readiness[field];
    if (value === undefined || value === 0) continue;
    if (!Number.isInteger(value) || value < 1 || value > max[field]) {
      throw new ValidationError(`readiness.${field}`, `must be an integer from 1 to ${max[field]} (ms)`);
    }
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
      if (check.host !== undefined && (typeof check.host !== "string" || check.host === "" || check.host.length > 253 || hasControlCharacter(check.host))) {
        throw new ValidationError(`${at}.host`, "must be a host name or address");
      }
      return check.host ? { kind: "tcp", host: check.host, port: check.port } : { kind: "tcp", port: check.port };
    }
    case "http": {
      let url: URL;
      if (typeof check.url !== "string" || check.url.length > 2048) throw new ValidationError(`${at}.url`, "must be an absolute http(s) URL of at most 2048 characters");
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
      return { kind: "command", args: checkArgs(check.args, `${at}.args`, { nonEmpty: true }) };
    }
    default:
      throw new ValidationError(`${at}.kind`, `must be "tcp", "http" or "command"`);
  }
}

/**
 * What makes two creates "the same request" for an idempotency key: every field the
 * client sent, with object keys sorted so equal requests hash alike.
 */
export function requestFingerprint(input: CreateServiceInput): string {
  const { requestId: _requestId, ...request } = input;
  return createHash("sha256").update(canonicalJson(request)).digest("hex");
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (typeof value === "object" && value !== null) {
    const entries = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
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

/** A target's field path ("kernel", "drives[0].path", "[0]", "") under "spec". */
function underSpec(field: string): string {
  return field === "" ? "spec" : field.startsWith("[") ? `spec${field}` : `spec.${field}`;
}

/** `message` without its leading "<field>: ", the way ValidationError words a problem. */
function problemOf(message: unknown, field: string): string {
  const text = typeof message === "string" ? message : "is invalid";
  return text.startsWith(`${field}: `) ? text.slice(field.length + 2) : text;
}

/**
 * An error from a target's validate() as a ValidationError with its field under "spec".
 * Recognised structurally (name "ValidationError" and a string `field`) so plugins need
 * not share this module's class identity. A VmctlError of another kind naming a field
 * (FAILED_PRECONDITION: the spec is well formed but the host lacks what it relies on,
 * e.g. microvm's default kernel) keeps its kind: the caller has nothing to fix in the
 * request, only on the host.
 */
export function specError(err: unknown): VmctlError {
  const e = err as { name?: unknown; field?: unknown; message?: unknown; code?: unknown; details?: { field?: unknown } } | null;
  if (e !== null && typeof e === "object" && e.name === "ValidationError" && typeof e.field === "string") {
    return new ValidationError(underSpec(e.field), problemOf(e.message, e.field));
  }
  if (
    e !== null &&
    typeof e === "object" &&
    e.name === "VmctlError" &&
    typeof e.code === "string" &&
    isErrorCode(e.code) &&
    e.code !== "INVALID_ARGUMENT" &&
    typeof e.details?.field === "string"
  ) {
    const field = underSpec(e.details.field);
    return new VmctlError(e.code, `${field}: ${problemOf(e.message, e.details.field)}`, { cause: err, details: { field } });
  }
  return new ValidationError("spec", err instanceof Error ? err.message : String(err));
}

/**
 * The untrusted spec a target makes from the `vmctl run` shorthand (explicit `spec`
 * fields win). A target without `specFromRun` needs an explicit spec.
 */
export function specFromRun(factory: ServiceFactory, run: RunShorthand, spec: unknown): unknown {
  if (typeof run !== "object" || run === null) throw new ValidationError("run", "must be an object");
  const { image, command = [], env = {}, mounts: binds = [], copyOut = [] } = run;
  if (image !== undefined && (typeof image !== "string" || image === "" || image.includes("\0") || image.length > 4096)) {
    throw new ValidationError("run.image", "must be a non-empty string without NUL, at most 4096 characters");
  }
  checkArgs(command, "run.command");
  if (typeof env !== "object" || env === null || Array.isArray(env)) throw new ValidationError("run.env", "must be a map of strings");
  const vars = entriesByKey(env as Record<string, unknown>);
  if (vars.length > LIMITS.envCount) throw new ValidationError("run.env", `has ${vars.length} variables; at most ${LIMITS.envCount}`);
  for (const [key, value] of vars) {
    const at = `run.env.${key.length > LIMITS.echoLength ? echo(key) : key}`;
    if (key === "" || key.includes("=") || key.includes("\0")) throw new ValidationError(at, "is not a valid variable name");
    if (typeof value !== "string") throw new ValidationError(at, "must be a string");
    if (value.includes("\0")) throw new ValidationError(at, "must not contain NUL");
  }
  checkJsonShape(env, "run.env");
  const checkedMounts = mounts(binds, "run.mounts", pathText);
  if (checkedMounts.length > LIMITS.runPathCount) throw new ValidationError("run.mounts", `has ${checkedMounts.length} entries; at most ${LIMITS.runPathCount}`);
  if (!Array.isArray(copyOut)) throw new ValidationError("run.copyOut", "must be a list of paths");
  if (copyOut.length > LIMITS.runPathCount) throw new ValidationError("run.copyOut", `has ${copyOut.length} entries; at most ${LIMITS.runPathCount}`);
  const checkedCopyOut = copyOut.map((path: unknown, i) => checkServicePath(path, `run.copyOut[${i}]`));
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
      mounts: checkedMounts,
      copyOut: checkedCopyOut,
      spec: (spec ?? {}) as Record<string, unknown>,
    });
  } catch (err) {
    throw specError(err);
  }
}

/** The factory of a usable target; an unknown target names the "target" field. */
export function factoryFor(registry: PluginRegistry, target: string): ServiceFactory {
  try {
    return registry.factory(target);
  } catch (err) {
    const e = VmctlError.from(err);
    if (e.code !== "NOT_FOUND") throw e;
    throw new VmctlError("NOT_FOUND", `target: ${e.message}`, { cause: err, details: { ...e.details, field: "target", target } });
  }
}

/** The spec the target accepted, given as `spec` or made from the `run` shorthand. */
export function validatedSpec(factory: ServiceFactory, input: CreateServiceInput): JsonValue {
  const untrusted = input.run === undefined ? input.spec : specFromRun(factory, input.run, input.spec);
  // The shorthand and the spec were bounded apart; what the target made of them is bounded as a whole.
  if (input.run !== undefined) checkJsonShape(untrusted, "spec");
  try {
    return factory.validate(untrusted);
  } catch (err) {
    throw specError(err);
  }
}
