// The package directory to hand the kit as `pluginPath`, checked to be built: given the
// directory, the kit loads the plugin's built entry as vmctld does and runs the restart
// checks in a fresh process (adopt/interrupted-start among them), so a plugin's own test
// suite must never run them against a missing or stale build, nor skip them for it.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export interface BuiltPluginOptions {
  /** The sources the build is made of, relative to the package (default `src`); tests and `testing/` are not counted. */
  readonly sources?: string;
}

/** The newest source file under `dir` that the build is made of, with its mtime. */
function newestSource(dir: string): { file: string; mtimeMs: number } | undefined {
  let newest: { file: string; mtimeMs: number } | undefined;
  const walk = (d: string): void => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const path = join(d, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== "testing" && entry.name !== "node_modules") walk(path);
      } else if (/\.(ts|mts|js|mjs)$/.test(entry.name) && !/\.test\.[mc]?[tj]s$/.test(entry.name)) {
        const mtimeMs = statSync(path).mtimeMs;
        if (newest === undefined || mtimeMs > newest.mtimeMs) newest = { file: path, mtimeMs };
      }
    }
  };
  if (existsSync(dir)) walk(dir);
  return newest;
}

/**
 * `packageDir` (a path or a `file:` URL, e.g. `new URL("..", import.meta.url)` from
 * `src/`) when its `vmctl.entry` is built and no newer than its sources; else throws,
 * saying what to build. For `conformanceTests(test, { pluginPath: builtPluginPath(...) })`.
 */
export function builtPluginPath(packageDir: string | URL, options: BuiltPluginOptions = {}): string {
  const dir = resolve(typeof packageDir === "string" ? packageDir : fileURLToPath(packageDir));
  const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { name?: string; vmctl?: { entry?: string } };
  const name = pkg.name ?? dir;
  const entryName = pkg.vmctl?.entry;
  if (typeof entryName !== "string") throw new Error(`${name} (${dir}): package.json has no vmctl.entry`);
  const entry = resolve(dir, entryName);
  const build = `build it first (npm run build in ${relative(process.cwd(), dir) || "."})`;
  if (!existsSync(entry)) {
    throw new Error(`${name}: ${entryName} is missing: the conformance kit loads the built plugin from its package directory, as vmctld does; ${build}`);
  }
  const newest = newestSource(join(dir, options.sources ?? "src"));
  if (newest !== undefined && newest.mtimeMs > statSync(entry).mtimeMs) {
    throw new Error(`${name}: ${entryName} is older than ${relative(dir, newest.file)}: the kit would check a stale build; ${build}`);
  }
  return dir;
}
