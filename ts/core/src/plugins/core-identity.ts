// Which copy of @vmctl/core a directory resolves, compared with the host's own. A plugin
// with its own copy would hand the orchestrator objects from a different module graph
// (different error classes, a different contract version), so the loader makes its
// imports resolve to the host's (core-redirect.ts).
import { existsSync, readFileSync, realpathSync } from "node:fs";
import { dirname, join, parse } from "node:path";
import { fileURLToPath } from "node:url";

export const CORE_PACKAGE = "@vmctl/core";

let hostRoot: string | undefined;

/** The real path of the @vmctl/core package this code is running from. */
export function hostCoreRoot(): string {
  if (hostRoot !== undefined) return hostRoot;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, "package.json");
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, "utf8")) as { name?: string }).name === CORE_PACKAGE) {
      hostRoot = realpathSync(dir);
      return hostRoot;
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`cannot find the ${CORE_PACKAGE} package root above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

/**
 * The real path of the @vmctl/core that Node would resolve from `dir` (walking up the
 * node_modules folders as Node does), or undefined if none resolves.
 */
export function resolvedCoreRoot(dir: string): string | undefined {
  const { root } = parse(dir);
  for (let d = dir; ; d = dirname(d)) {
    if (!d.endsWith(`${"/"}node_modules`)) {
      const candidate = join(d, "node_modules", CORE_PACKAGE, "package.json");
      if (existsSync(candidate)) return realpathSync(dirname(candidate));
    }
    if (d === root) return undefined;
  }
}
