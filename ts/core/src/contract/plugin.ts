import type { ServiceFactory } from "./target.js";
import type { Logger } from "./target.js";

/** The contract version this core implements; plugins declare the range they accept in `engines.vmctl`. */
export const CONTRACT_VERSION = "0.1.0";

/** What a plugin's entry module exports as `default` (or `vmctlPlugin`): plain data. */
export interface PluginRegistration {
  /** The plugin's package name, for messages. */
  readonly name: string;
  readonly targets: readonly TargetRegistration[];
}

export interface TargetRegistration {
  readonly target: string;
  /** Makes the factory. Returning undefined means "not applicable on this host" (skipped, not failed). */
  readonly init: (env: PluginEnvironment) => Promise<ServiceFactory | undefined> | ServiceFactory | undefined;
}

/** What the orchestrator offers a plugin at start-up. */
export interface PluginEnvironment {
  /** Directory for the target's own state (caches, images), shared by its services. */
  readonly stateDir: string;
  /** Options for this target from the orchestrator config (`targets.<name>`). */
  readonly options: Readonly<Record<string, unknown>>;
  readonly log: Logger;
}

/** The `vmctl` field of a plugin's package.json. */
export interface PluginManifest {
  /** Module exporting the PluginRegistration, relative to the package root. */
  readonly entry: string;
  /** Targets the plugin registers (checked against what the entry registers). */
  readonly targets: readonly string[];
}
