// The one reader of the host requirements targets declare on their registration
// (`TargetRegistration.requires`, contract/requirements.ts): `parseRequirements` checks
// the untrusted data a plugin hands over, `evaluateRequirements` says for each whether
// this host has it and the fix. `vmctl doctor` and the conformance kit use them; no
// plugin code runs for either.
import { execFile } from "node:child_process";
import { closeSync, constants, openSync, readFileSync, statSync } from "node:fs";
import { connect } from "node:net";
import { basename, dirname, isAbsolute, normalize } from "node:path";
import { ValidationError } from "../contract/index.js";
import { REQUIREMENT_KINDS, type HostRequirement, type RequirementStatus } from "../contract/requirements.js";
import { defaultSearchDirs, findBinary } from "./binaries.js";
import { bool, record, refuseUnknown, str, strings } from "./spec-fields.js";

const BASE_FIELDS = ["kind", "why", "optional", "package", "fix"];
const KIND_FIELDS: Readonly<Record<HostRequirement["kind"], readonly string[]>> = {
  binary: ["name", "or", "paths", "env", "option", "versionArgs"],
  device: ["path", "access", "option"],
  file: ["path", "contains"],
  socket: ["path", "option"],
};
/** Debian policy's package names: lower case, digits, + - . ; two characters at least. */
const DEBIAN_PACKAGE = /^[a-z0-9][a-z0-9+.-]+$/;
const FILE_NAME = /^[A-Za-z0-9_+.-]+$/;
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A non-empty single line of at most `max` characters. */
function line(value: unknown, field: string, max = 200): string {
  const text = str(value, field);
  if (text.trim() === "") throw new ValidationError(field, "must not be empty");
  if (/[\r\n]/.test(text)) throw new ValidationError(field, "must be one line");
  if (text.length > max) throw new ValidationError(field, `must be at most ${max} characters`);
  return text;
}

function matching(pattern: RegExp, what: string): (value: unknown, field: string) => string {
  return (value, field) => {
    const text = str(value, field);
    if (!pattern.test(text)) throw new ValidationError(field, `must be ${what}`);
    return text;
  };
}

const fileName = matching(FILE_NAME, "a file name (letters, digits, _ + . -), not a path");
const identifier = matching(IDENTIFIER, "an identifier (letters, digits, _)");

function absolute(value: unknown, field: string, under?: string): string {
  const path = str(value, field);
  if (!isAbsolute(path) || normalize(path) !== path) throw new ValidationError(field, "must be an absolute, normalized path");
  if (under !== undefined && !path.startsWith(under)) throw new ValidationError(field, `must be under ${under}`);
  return path;
}

/** One requirement, checked: every field typed, none unknown. */
function parseRequirement(value: unknown, field: string): HostRequirement {
  const obj = record(value, field);
  const kind = obj.kind;
  if (typeof kind !== "string" || !(REQUIREMENT_KINDS as readonly string[]).includes(kind)) {
    throw new ValidationError(`${field}.kind`, `must be one of ${REQUIREMENT_KINDS.join(", ")}`);
  }
  const k = kind as HostRequirement["kind"];
  refuseUnknown(obj, [...BASE_FIELDS, ...KIND_FIELDS[k]], `${field}.`);
  const at = (name: string) => `${field}.${name}`;
  const base = {
    why: line(obj.why, at("why")),
    ...(obj.optional === undefined ? {} : { optional: bool(obj.optional, at("optional")) }),
    ...(obj.package === undefined ? {} : { package: matching(DEBIAN_PACKAGE, "a Debian package name")(obj.package, at("package")) }),
    ...(obj.fix === undefined ? {} : { fix: line(obj.fix, at("fix")) }),
  };
  if (base.package === undefined && base.fix === undefined) throw new ValidationError(at("package"), "required when there is no fix (say how to get it)");
  const option = obj.option === undefined ? {} : { option: identifier(obj.option, at("option")) };
  switch (k) {
    case "binary":
      return {
        kind: k,
        ...base,
        name: fileName(obj.name, at("name")),
        ...(obj.or === undefined ? {} : { or: strings(obj.or, at("or"), fileName) }),
        ...(obj.paths === undefined ? {} : { paths: strings(obj.paths, at("paths"), (v, f) => absolute(v, f)) }),
        ...(obj.env === undefined ? {} : { env: identifier(obj.env, at("env")) }),
        ...option,
        ...(obj.versionArgs === undefined ? {} : { versionArgs: strings(obj.versionArgs, at("versionArgs")) }),
      };
    case "device":
      if (obj.access !== "r" && obj.access !== "rw") throw new ValidationError(at("access"), 'must be "r" or "rw"');
      return { kind: k, ...base, path: absolute(obj.path, at("path"), "/dev/"), access: obj.access, ...option };
    case "file":
      return {
        kind: k,
        ...base,
        path: absolute(obj.path, at("path")),
        ...(obj.contains === undefined ? {} : { contains: matching(/^\S+$/, "one word")(obj.contains, at("contains")) }),
      };
    case "socket":
      return { kind: k, ...base, path: absolute(obj.path, at("path")), ...option };
  }
}

/**
 * A target's declared requirements, checked: an array of HostRequirement, each field
 * typed and none unknown. Throws ValidationError naming the field (`requires[1].package`);
 * undefined (nothing declared) is `[]`.
 */
export function parseRequirements(value: unknown, field = "requires"): HostRequirement[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new ValidationError(field, "must be an array of host requirements");
  return value.map((item, i) => parseRequirement(item, `${field}[${i}]`));
}

/** Short, for a table: `runc or crun`, `/dev/kvm (rw)`, `/proc/filesystems: overlay`. */
export function requirementName(req: HostRequirement): string {
  switch (req.kind) {
    case "binary":
      return [req.name, ...(req.or ?? [])].join(" or ");
    case "device":
      return `${req.path} (${req.access})`;
    case "file":
      return req.contains === undefined ? req.path : `${req.path}: ${req.contains}`;
    case "socket":
      return req.path;
  }
}

/** Where to look and what is evaluated: the target's options from the daemon's config, the environment. */
export interface RequirementContext {
  /** `targets.<target>` of the daemon's config: an `option` a requirement names overrides where to look. */
  readonly options?: Readonly<Record<string, unknown>>;
  readonly env?: NodeJS.ProcessEnv;
  /** Directories searched for binaries (default PATH plus the sbin directories). */
  readonly searchDirs?: readonly string[];
  /** Run `versionArgs` of the binaries found (default false). */
  readonly versions?: boolean;
  /** How long a version command or a socket connection may take (default 2000 ms). */
  readonly timeoutMs?: number;
}

type Found = { readonly found: string } | { readonly problem: string; readonly found?: string };

const codeOf = (err: unknown): string => (err as NodeJS.ErrnoException).code ?? (err instanceof Error ? err.message : String(err));

/** An absolute path to an executable file: findBinary over its one directory. */
function executable(path: string): boolean {
  return isAbsolute(path) && findBinary(basename(path), [dirname(path)]) !== undefined;
}

/** The option's value when the target's options set it (a string), else undefined. */
function optionValue(option: string | undefined, ctx: RequirementContext): string | undefined {
  const value = option === undefined ? undefined : ctx.options?.[option];
  return typeof value === "string" && value !== "" ? value : undefined;
}

function locateBinary(req: Extract<HostRequirement, { kind: "binary" }>, ctx: RequirementContext, target: string): Found {
  const configured = optionValue(req.option, ctx);
  if (configured !== undefined) {
    return executable(configured) ? { found: configured } : { problem: `${configured} (targets.${target}.${req.option}) is not an executable file` };
  }
  const named = req.env === undefined ? undefined : (ctx.env ?? process.env)[req.env];
  if (named) return executable(named) ? { found: named } : { problem: `${req.env}=${named} is not an executable file` };
  for (const path of req.paths ?? []) if (executable(path)) return { found: path };
  const dirs = ctx.searchDirs ?? defaultSearchDirs();
  for (const name of [req.name, ...(req.or ?? [])]) {
    const found = findBinary(name, dirs);
    if (found !== undefined) return { found };
  }
  const where = ctx.searchDirs === undefined ? "on PATH or in /usr/local/sbin, /usr/sbin, /sbin" : `in ${dirs.join(", ")}`;
  return { problem: `not found ${req.paths?.length ? `at ${req.paths.join(", ")} nor ` : ""}${where}` };
}

function checkDevice(path: string, access: "r" | "rw"): Found {
  let stats;
  try {
    stats = statSync(path);
  } catch (err) {
    return { problem: codeOf(err) === "ENOENT" ? "no such device" : codeOf(err) };
  }
  if (!stats.isCharacterDevice() && !stats.isBlockDevice()) return { problem: "not a device node", found: path };
  // Opened, not only access()ed: root passes access() even where the driver is missing (ENXIO, ENODEV).
  try {
    closeSync(openSync(path, (access === "rw" ? constants.O_RDWR : constants.O_RDONLY) | constants.O_NONBLOCK | constants.O_NOCTTY));
    return { found: path };
  } catch (err) {
    return { problem: `cannot open it ${access === "rw" ? "read-write" : "read-only"} (${codeOf(err)})`, found: path };
  }
}

function checkFile(path: string, contains: string | undefined): Found {
  if (contains === undefined) {
    try {
      statSync(path);
      return { found: path };
    } catch (err) {
      return { problem: codeOf(err) === "ENOENT" ? "no such file" : codeOf(err) };
    }
  }
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    return { problem: codeOf(err) === "ENOENT" ? "no such file" : codeOf(err) };
  }
  const words = new Set(text.split(/\s+/));
  return words.has(contains) ? { found: path } : { problem: `does not list ${contains}`, found: path };
}

function checkSocket(path: string, timeoutMs: number): Promise<Found> {
  try {
    if (!statSync(path).isSocket()) return Promise.resolve({ problem: "not a socket", found: path });
  } catch (err) {
    return Promise.resolve({ problem: codeOf(err) === "ENOENT" ? "no such socket (is the daemon running?)" : codeOf(err) });
  }
  return new Promise((resolve) => {
    const socket = connect(path);
    const done = (found: Found) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(found);
    };
    const timer = setTimeout(() => done({ problem: `no answer within ${timeoutMs} ms`, found: path }), timeoutMs);
    socket.once("connect", () => done({ found: path }));
    socket.once("error", (err) => done({ problem: `nothing answers on it (${codeOf(err)})`, found: path }));
  });
}

function versionOf(path: string, args: readonly string[], timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(path, [...args], { timeout: timeoutMs }, (_err, stdout, stderr) => {
      // Some print it to stderr (mkfs.ext4 -V); a failing command may still print it.
      const first = `${stdout}\n${stderr}`.split("\n").find((l) => l.trim() !== "");
      resolve(first?.trim());
    });
  });
}

/** The fix as one line: `apt-get install <package>`, the declared fix, or both. */
export function requirementFix(req: HostRequirement): string {
  return [req.package === undefined ? undefined : `apt-get install ${req.package}`, req.fix].filter(Boolean).join("; ");
}

/** One requirement as this host has it. `target` names the target in messages about its options. */
export async function evaluateRequirement(req: HostRequirement, target: string, ctx: RequirementContext = {}): Promise<RequirementStatus> {
  const timeoutMs = ctx.timeoutMs ?? 2000;
  let result: Found;
  switch (req.kind) {
    case "binary":
      result = locateBinary(req, ctx, target);
      break;
    case "device":
      result = checkDevice(optionValue(req.option, ctx) ?? req.path, req.access);
      break;
    case "file":
      result = checkFile(req.path, req.contains);
      break;
    case "socket":
      result = await checkSocket(optionValue(req.option, ctx) ?? req.path, timeoutMs);
      break;
  }
  const name = requirementName(req);
  if ("problem" in result) {
    return { requirement: req, name, met: false, ...(result.found === undefined ? {} : { found: result.found }), problem: result.problem, fix: requirementFix(req) };
  }
  const version = req.kind === "binary" && ctx.versions && req.versionArgs ? await versionOf(result.found, req.versionArgs, timeoutMs) : undefined;
  return { requirement: req, name, met: true, found: result.found, ...(version === undefined ? {} : { version }) };
}

/** Every requirement as this host has it, in order, evaluated in parallel. */
export function evaluateRequirements(reqs: readonly HostRequirement[], target: string, ctx: RequirementContext = {}): Promise<RequirementStatus[]> {
  return Promise.all(reqs.map((req) => evaluateRequirement(req, target, ctx)));
}
