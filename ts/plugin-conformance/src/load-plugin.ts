// Turns what the caller gave (a factory init, a registration, or a plugin package path)
// into one init function for one target. A path is loaded by @vmctl/core's own loader,
// so the kit checks the package exactly as `vmctld --plugin PATH` would.
import { resolve } from "node:path";
import { loadPluginFromDir } from "@vmctl/core/loader";
import type { PluginRegistration } from "@vmctl/core/contract";
import type { FactoryInit, PluginSource } from "./types.js";

export interface ResolvedPlugin {
  /** The plugin's name, for the report. */
  readonly plugin: string;
  readonly target: string;
  readonly init: FactoryInit;
  /** The target's registration (its declared `requires`, untrusted); undefined for a bare factory. */
  readonly registration?: { readonly requires?: unknown };
}

export async function resolvePlugin(source: PluginSource, target?: string): Promise<ResolvedPlugin> {
  if (source.factory !== undefined) {
    if (target === undefined) throw new Error("with a factory init, name its target (config.target)");
    return { plugin: `factory ${target}`, target, init: source.factory };
  }
  if (source.registration !== undefined) return fromRegistration(source.registration, target);
  const loaded = await loadPluginFromDir(resolve(source.pluginPath));
  return fromRegistration(loaded.registration, target, `${loaded.package.name}@${loaded.package.version}`);
}

function fromRegistration(registration: PluginRegistration, target: string | undefined, label = registration.name): ResolvedPlugin {
  const names = registration.targets.map((t) => t.target);
  const chosen = target === undefined ? (names.length === 1 ? registration.targets[0] : undefined) : registration.targets.find((t) => t.target === target);
  if (chosen === undefined) {
    throw new Error(
      target === undefined
        ? `${label} registers ${names.length} targets (${names.join(", ")}): choose one (--target NAME)`
        : `${label} registers no target "${target}" (it registers ${names.join(", ") || "none"})`,
    );
  }
  return { plugin: label, target: chosen.target, init: (env) => chosen.init(env), registration: { requires: chosen.requires } };
}
