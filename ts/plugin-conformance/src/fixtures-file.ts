// Fixtures from a file, for the CLI: an ES module (default export: the fixtures, or a
// function of { tmpDir } returning them) or JSON with "{{code}}" placeholders.
import { readFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { extname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { ConformanceFixtures, FixtureSpec, FromRunFixture, InvalidFixture, RunningFixtureSpec } from "./types.js";

/** File names looked for in the plugin directory when --fixtures is not given. */
export const DEFAULT_FIXTURE_FILES = ["vmctl-conformance.fixtures.mjs", "vmctl-conformance.fixtures.js", "vmctl-conformance.fixtures.json"];

export interface FixturesJson {
  readonly specs: {
    /** Every string inside has "{{code}}" replaced by the exit code. */
    readonly exitsWith: FixtureSpec;
    readonly runsUntilStopped: RunningFixtureSpec;
    readonly ignoresPoliteStop: RunningFixtureSpec;
    readonly invalid: readonly InvalidFixture[];
    readonly fromRun?: FromRunFixture;
  };
  readonly exec?: ConformanceFixtures["exec"];
  readonly timeouts?: ConformanceFixtures["timeouts"];
}

/** The fixtures file for a plugin dir: `explicit`, else the first default name present. */
export function findFixturesFile(pluginDir: string, explicit?: string): string {
  if (explicit !== undefined) return resolve(explicit);
  const found = DEFAULT_FIXTURE_FILES.map((f) => join(pluginDir, f)).find((p) => existsSync(p));
  if (found === undefined) {
    throw new Error(`no fixtures: pass --fixtures FILE.mjs|FILE.json, or put ${DEFAULT_FIXTURE_FILES.join(" or ")} in ${pluginDir}`);
  }
  return found;
}

export async function loadFixtures(file: string, context: { tmpDir: string }): Promise<ConformanceFixtures> {
  if (extname(file) === ".json") return fromJson(JSON.parse(await readFile(file, "utf8")) as FixturesJson, file);
  const module = (await import(pathToFileURL(file).href)) as { default?: unknown; fixtures?: unknown };
  const exported = module.default ?? module.fixtures;
  const fixtures = typeof exported === "function" ? await (exported as (c: { tmpDir: string }) => unknown)(context) : exported;
  check(fixtures, file);
  return fixtures as ConformanceFixtures;
}

function fromJson(json: FixturesJson, file: string): ConformanceFixtures {
  check(json, file);
  const withCode = (value: unknown, code: number): unknown => {
    if (typeof value === "string") return value.replaceAll("{{code}}", String(code));
    if (Array.isArray(value)) return value.map((v) => withCode(v, code));
    if (typeof value === "object" && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withCode(v, code)]));
    return value;
  };
  return {
    specs: {
      exitsWith: (code) => withCode(json.specs.exitsWith, code) as FixtureSpec,
      runsUntilStopped: () => json.specs.runsUntilStopped,
      ignoresPoliteStop: () => json.specs.ignoresPoliteStop,
      invalid: json.specs.invalid,
      ...(json.specs.fromRun === undefined ? {} : { fromRun: () => json.specs.fromRun! }),
    },
    ...(json.exec ? { exec: json.exec } : {}),
    ...(json.timeouts ? { timeouts: json.timeouts } : {}),
  };
}

function check(fixtures: unknown, file: string): void {
  const specs = (fixtures as { specs?: Record<string, unknown> } | null)?.specs;
  if (typeof specs !== "object" || specs === null) throw new Error(`${file}: the fixtures need a "specs" object`);
  for (const key of ["exitsWith", "runsUntilStopped", "ignoresPoliteStop", "invalid"]) {
    if (specs[key] === undefined) throw new Error(`${file}: fixtures.specs.${key} is missing`);
  }
  if (!Array.isArray(specs.invalid)) throw new Error(`${file}: fixtures.specs.invalid must be an array of { spec, field }`);
}
