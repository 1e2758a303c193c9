// Resolves kernel modules to the files insmod must load, in dependency order, from the
// kernel's own modules.dep (written by depmod at setup), so nothing here names a path
// of one kernel version.
import { readFileSync } from "node:fs";
import { basename, join } from "node:path";

/** A module to load: its file relative to lib/modules/<release>, and insmod parameters. */
export interface ModuleLoad {
  readonly name: string;
  readonly path: string;
  readonly params: string;
}

/** modprobe treats '-' and '_' in module names alike; so do we. */
const normalize = (name: string): string => name.replace(/-/g, "_");
const moduleName = (path: string): string => normalize(basename(path).replace(/\.ko(\.[a-z]+)?$/, ""));

interface DepIndex {
  /** module name → its file */
  readonly paths: ReadonlyMap<string, string>;
  /** module file → the files it needs */
  readonly deps: ReadonlyMap<string, readonly string[]>;
  readonly builtin: ReadonlySet<string>;
}

function readIndex(modulesDir: string): DepIndex {
  const paths = new Map<string, string>();
  const deps = new Map<string, readonly string[]>();
  for (const line of readFileSync(join(modulesDir, "modules.dep"), "utf8").split("\n")) {
    const colon = line.indexOf(":");
    if (colon < 0) continue;
    const path = line.slice(0, colon);
    paths.set(moduleName(path), path);
    deps.set(path, line.slice(colon + 1).trim().split(/\s+/).filter(Boolean));
  }
  let builtinText = "";
  try {
    builtinText = readFileSync(join(modulesDir, "modules.builtin"), "utf8");
  } catch {
    // A kernel without modules.builtin has nothing built in that we ask for.
  }
  const builtin = new Set(builtinText.split("\n").filter(Boolean).map(moduleName));
  return { paths, deps, builtin };
}

/**
 * The files to insmod, each after everything it depends on, for `wanted` (module name →
 * parameters). Built-in modules are skipped; an unknown module is an error.
 */
export function resolveModules(modulesDir: string, wanted: ReadonlyMap<string, string>): ModuleLoad[] {
  const index = readIndex(modulesDir);
  const order: ModuleLoad[] = [];
  const placed = new Set<string>();
  // Parameters follow the module even when it is loaded first as another's dependency.
  const params = new Map([...wanted].map(([name, value]) => [normalize(name), value]));
  const visit = (path: string, chain: readonly string[]): void => {
    if (placed.has(path)) return;
    if (chain.includes(path)) throw new Error(`modules.dep has a cycle: ${[...chain, path].join(" → ")}`);
    for (const dep of index.deps.get(path) ?? []) visit(dep, [...chain, path]);
    placed.add(path);
    const name = moduleName(path);
    order.push({ name, path, params: params.get(name) ?? "" });
  };
  for (const name of wanted.keys()) {
    const key = normalize(name);
    const path = index.paths.get(key);
    if (path !== undefined) visit(path, []);
    else if (!index.builtin.has(key)) throw new Error(`kernel module ${name} is neither in ${modulesDir}/modules.dep nor built in`);
  }
  return order;
}
