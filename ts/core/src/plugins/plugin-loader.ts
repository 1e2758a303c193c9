// Finds plugin packages (by name in node_modules folders, or by path), checks them, and
// imports their entry. Loading is separate from registering: the result is plain data
// for PluginRegistry.register.
import { existsSync, readFileSync } from "node:fs";
import { readdir, realpath } from "node:fs/promises";
import { isAbsolute, join, relative, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { PluginRegistration } from "../contract/plugin.js";
import { hostCoreRoot, resolvedCoreRoot } from "./core-identity.js";
import { redirectCoreImports } from "./core-redirect.js";
import { pluginError, readPluginPackage, type PluginPackage } from "./plugin-manifest.js";

export const PLUGIN_NAME = /^(@[a-z0-9][a-z0-9._~-]*\/)?vmctl-plugin-[a-z0-9._~-]+$/;

export interface LoadedPlugin {
  /** How it was asked for: package name or path. */
  readonly source: string;
  readonly package: PluginPackage;
  readonly registration: PluginRegistration;
}

/** True when `ref` names a path (absolute, or starting with ./ or ../) rather than a package. */
export function isPathReference(ref: string): boolean {
  return isAbsolute(ref) || ref.startsWith("./") || ref.startsWith("../") || ref === "." || ref === "..";
}

/** Loads a plugin by path or by package name (looked up in `nodeModules`, in order). */
export async function loadPlugin(ref: string, options: { nodeModules?: readonly string[]; cwd?: string } = {}): Promise<LoadedPlugin> {
  if (isPathReference(ref)) return loadPluginFromDir(resolve(options.cwd ?? process.cwd(), ref), ref);
  if (!PLUGIN_NAME.test(ref)) {
    throw pluginError(ref, `not a plugin package name (vmctl-plugin-* or @scope/vmctl-plugin-*) nor a path`);
  }
  for (const dir of options.nodeModules ?? []) {
    const candidate = join(dir, ref);
    if (existsSync(join(candidate, "package.json"))) return loadPluginFromDir(candidate, ref);
  }
  throw pluginError(ref, `package not found in ${(options.nodeModules ?? []).join(", ") || "any node_modules folder given"}`);
}

/** Package directories of every vmctl-plugin-* and @scope/vmctl-plugin-* in the given node_modules folders. */
export async function discoverPlugins(nodeModules: readonly string[]): Promise<string[]> {
  const found = new Map<string, string>();
  for (const dir of nodeModules) {
    for (const entry of await readdirOrEmpty(dir)) {
      if (entry.startsWith("@")) {
        for (const sub of await readdirOrEmpty(join(dir, entry))) {
          const name = `${entry}/${sub}`;
          if (PLUGIN_NAME.test(name) && !found.has(name)) found.set(name, join(dir, entry, sub));
        }
      } else if (PLUGIN_NAME.test(entry) && !found.has(entry)) {
        found.set(entry, join(dir, entry));
      }
    }
  }
  return [...found.values()];
}

/** Loads the plugin package in `dir`: manifest, engines.vmctl, its @vmctl/core made the host's, entry. */
export async function loadPluginFromDir(dir: string, source: string = dir): Promise<LoadedPlugin> {
  const pkg = await readPluginPackage(dir);
  const label = `${pkg.name} (${dir})`;

  // The plugin's @vmctl/core is the orchestrator's: a copy of its own (its devDependency)
  // or none (deployed without its peers) is bypassed, never loaded beside the host's.
  const real = await realpath(dir);
  const host = hostCoreRoot();
  if (resolvedCoreRoot(real) !== host) redirectCoreImports(real, host);

  const entry = resolve(dir, pkg.manifest.entry);
  const inside = relative(dir, entry);
  if (inside.startsWith("..") || isAbsolute(inside)) {
    throw pluginError(label, `vmctl.entry "${pkg.manifest.entry}" points outside the package`);
  }
  let module: Record<string, unknown>;
  try {
    module = (await import(pathToFileURL(entry).href)) as Record<string, unknown>;
  } catch (err) {
    throw pluginError(label, `cannot import its entry ${entry}: ${(err as Error).message}`, err);
  }
  const registration = checkRegistration(label, module.default ?? module.vmctlPlugin);

  const registered = registration.targets.map((t) => t.target).sort();
  const declared = [...pkg.manifest.targets].sort();
  if (registered.join("\0") !== declared.join("\0")) {
    throw pluginError(
      label,
      `package.json declares targets [${declared.join(", ")}] but the entry registers [${registered.join(", ")}]`,
    );
  }
  return { source, package: pkg, registration };
}

function checkRegistration(label: string, value: unknown): PluginRegistration {
  const reg = value as { name?: unknown; targets?: unknown } | undefined;
  if (typeof reg !== "object" || reg === null) {
    throw pluginError(label, `entry exports no PluginRegistration (as default or "vmctlPlugin")`);
  }
  if (typeof reg.name !== "string" || !Array.isArray(reg.targets)) {
    throw pluginError(label, `entry's registration needs "name" (string) and "targets" (array)`);
  }
  for (const [i, t] of (reg.targets as unknown[]).entries()) {
    const target = t as { target?: unknown; init?: unknown } | null;
    if (typeof target?.target !== "string" || typeof target.init !== "function") {
      throw pluginError(label, `registration targets[${i}] needs "target" (string) and "init" (function)`);
    }
  }
  return reg as PluginRegistration;
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}

export interface PluginLoadFailure {
  readonly source: string;
  /** Targets its package.json declares, when it could be read. */
  readonly targets: readonly string[];
  readonly error: Error;
}

/** Loads each plugin; one that fails is reported, not thrown, so the others still load. */
export async function loadPlugins(
  refs: readonly string[],
  options: { nodeModules?: readonly string[]; cwd?: string } = {},
): Promise<{ loaded: LoadedPlugin[]; failed: PluginLoadFailure[] }> {
  const loaded: LoadedPlugin[] = [];
  const failed: PluginLoadFailure[] = [];
  for (const ref of refs) {
    try {
      loaded.push(await loadPlugin(ref, options));
    } catch (err) {
      const dir = isPathReference(ref)
        ? resolve(options.cwd ?? process.cwd(), ref)
        : (options.nodeModules ?? []).map((d) => join(d, ref)).find((d) => existsSync(join(d, "package.json")));
      failed.push({
        source: ref,
        targets: dir === undefined ? [] : declaredTargets(dir),
        error: err instanceof Error ? err : new Error(String(err)),
      });
    }
  }
  return { loaded, failed };
}

function declaredTargets(dir: string): string[] {
  try {
    const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { vmctl?: { targets?: unknown } };
    const targets = pkg.vmctl?.targets;
    return Array.isArray(targets) ? targets.filter((t): t is string => typeof t === "string") : [];
  } catch {
    return [];
  }
}
