import type { ServiceFactory } from "./target.js";
import type { Logger } from "./target.js";
import type { HostRequirement } from "./requirements.js";

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
  /**
   * Makes the factory. When the host cannot run the target, throw `SkipTarget(reason)` (or
   * any error with `skip: true`): the target is *skipped*, and `vmctl targets` shows the
   * reason. Returning undefined skips it too, but only as "not applicable on this host".
   * Any other error means *failed*. Neither affects other targets.
   */
  readonly init: (env: PluginEnvironment) => Promise<ServiceFactory | undefined> | ServiceFactory | undefined;
  /**
   * What the target needs on the host (binaries, devices, kernel features, sockets), as
   * plain data: `vmctl doctor` reads it from the registration without calling `init` and
   * says, for each, whether this host has it and the fix (the Debian package). Optional;
   * a target that needs nothing on the host (a cloud API) leaves it out or gives `[]`.
   */
  readonly requires?: readonly HostRequirement[];
}

/**
 * Thrown by a target's `init` when the host cannot run the target (a missing binary, no
 * /dev/kvm): the target is skipped, not failed, and its message is shown as the reason
 * (`vmctl targets`: "skipped: <message>"). Recognised by `skip: true`, not by class, so
 * it works across module copies.
 */
export class SkipTarget extends Error {
  override readonly name = "SkipTarget";
  readonly skip = true;
}

/** What the orchestrator offers a plugin at start-up. */
export interface PluginEnvironment {
  /** Directory for the target's own state (caches, images), shared by its services. */
  readonly stateDir: string;
  /** Options for this target from the orchestrator config (`targets.<name>`). */
  readonly options: Readonly<Record<string, unknown>>;
  /**
   * The target's logger: the daemon's log, every line labelled with the plugin and the
   * target (`"plugin": "...", "target": "..."`). Per-service lines go to `ctx.log`,
   * which adds the service id.
   */
  readonly log: Logger;
}

/** The `vmctl` field of a plugin's package.json. */
export interface PluginManifest {
  /** Module exporting the PluginRegistration, relative to the package root. */
  readonly entry: string;
  /** Targets the plugin registers (checked against what the entry registers). */
  readonly targets: readonly string[];
}
