// The engine's target registry: plugins handed in, named, or discovered, loaded and
// registered; a plugin that fails is recorded as failed and harms no other.
import type { PluginRegistration } from "../contract/plugin.js";
import type { Logger } from "../contract/target.js";
import { discoverPlugins, loadPlugins } from "./plugin-loader.js";
import { PluginRegistry } from "./plugin-registry.js";

export interface RegistryOptions {
  readonly plugins?: readonly (string | PluginRegistration)[];
  readonly nodeModules?: readonly string[];
  readonly discover?: boolean;
}

export async function loadRegistry(options: RegistryOptions, log: Logger): Promise<PluginRegistry> {
  const registry = new PluginRegistry();
  const refs: string[] = [];
  for (const plugin of options.plugins ?? []) {
    if (typeof plugin === "string") refs.push(plugin);
    else registry.register(plugin);
  }
  if (options.discover) {
    for (const dir of await discoverPlugins(options.nodeModules ?? [])) if (!refs.includes(dir)) refs.push(dir);
  }
  const { loaded, failed } = await loadPlugins(refs, options.nodeModules === undefined ? {} : { nodeModules: options.nodeModules });
  for (const plugin of loaded) {
    try {
      registry.register(plugin.registration, plugin.source);
    } catch (err) {
      log.error("plugin not registered", { plugin: plugin.source, err });
      registry.registerFailure(plugin.source, plugin.package.manifest.targets, (err as Error).message);
    }
  }
  for (const failure of failed) {
    log.error("plugin not loaded", { plugin: failure.source, err: failure.error });
    registry.registerFailure(failure.source, failure.targets, failure.error.message);
  }
  return registry;
}
