// @vmctl/core/loader: how the orchestrator finds, checks and imports plugin packages,
// without the engine (no SQLite): for tools that load a plugin as vmctld would, such as
// the conformance kit. Runtime dependency: semver.
export { discoverPlugins, isPathReference, loadPlugin, loadPluginFromDir, loadPlugins, PLUGIN_NAME } from "./plugins/plugin-loader.js";
export type { LoadedPlugin, PluginLoadFailure } from "./plugins/plugin-loader.js";
export { pluginError, readPluginPackage } from "./plugins/plugin-manifest.js";
export type { PluginPackage } from "./plugins/plugin-manifest.js";
export { hostCoreRoot } from "./plugins/core-identity.js";
