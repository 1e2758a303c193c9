// The target registry, containerd-style: registrations are plain data; `init` makes each
// target's factory. A target whose init returns undefined is "skipped" (not applicable
// on this host), one that throws is "failed"; neither takes any other target down.
import type { PluginEnvironment, PluginRegistration } from "../contract/plugin.js";
import type { ServiceFactory } from "../contract/target.js";
import type { Capabilities } from "../contract/types.js";
import { VmctlError } from "../errors.js";
import type { TargetInfo } from "../orchestrator/api.js";

export const NO_CAPABILITIES: Capabilities = { exec: false, pause: false, network: false, volumes: false, logsFollow: false };

type TargetEntry =
  | { readonly state: "pending"; readonly plugin: string; readonly init: TargetInit }
  | { readonly state: "ready"; readonly plugin: string; readonly factory: ServiceFactory }
  | { readonly state: "skipped" | "failed"; readonly plugin: string; readonly reason: string };

type TargetInit = (env: PluginEnvironment) => Promise<ServiceFactory | undefined> | ServiceFactory | undefined;

export class PluginRegistry {
  readonly #targets = new Map<string, TargetEntry>();

  /**
   * Adds a plugin's targets. `plugin` names where it came from (package name or path).
   * A target name registered twice is refused.
   */
  register(registration: PluginRegistration, plugin: string = registration.name): void {
    for (const { target, init } of registration.targets) {
      this.#claim(target, plugin);
      this.#targets.set(target, { state: "pending", plugin, init });
    }
  }

  /** Records a plugin that could not be loaded, so its targets report why. */
  registerFailure(plugin: string, targets: readonly string[], reason: string): void {
    for (const target of targets) {
      if (this.#targets.has(target)) continue;
      this.#targets.set(target, { state: "failed", plugin, reason });
    }
  }

  /** Initialises every pending target. Targets are independent, so they init concurrently. */
  async init(environment: (target: string, plugin: string) => PluginEnvironment): Promise<void> {
    const pending = [...this.#targets].filter(([, e]) => e.state === "pending");
    await Promise.all(
      pending.map(async ([target, entry]) => {
        if (entry.state !== "pending") return;
        const { plugin } = entry;
        try {
          const factory = await entry.init(environment(target, plugin));
          if (factory === undefined) {
            this.#targets.set(target, { state: "skipped", plugin, reason: "not applicable on this host" });
          } else if (factory.target !== target) {
            this.#targets.set(target, {
              state: "failed",
              plugin,
              reason: `init returned a factory for target "${factory.target}"`,
            });
          } else {
            this.#targets.set(target, { state: "ready", plugin, factory });
          }
        } catch (err) {
          // A thrown SkipTarget (or any error carrying skip: true) means "not applicable", and says why.
          const reason = err instanceof Error ? err.message : String(err);
          const skipped = (err as { skip?: unknown } | null)?.skip === true;
          this.#targets.set(target, { state: skipped ? "skipped" : "failed", plugin, reason });
        }
      }),
    );
  }

  /** The factory of a usable target: NOT_FOUND if unknown, UNAVAILABLE if skipped or failed. */
  factory(target: string): ServiceFactory {
    const entry = this.#targets.get(target);
    if (entry === undefined) {
      const known = [...this.#targets.keys()].sort().join(", ") || "none";
      throw new VmctlError("NOT_FOUND", `unknown target "${target}" (known: ${known})`, {
        details: { field: "target", target },
      });
    }
    if (entry.state !== "ready") {
      throw new VmctlError("UNAVAILABLE", `target "${target}" is not usable: ${describe(entry)}`, { details: { target } });
    }
    return entry.factory;
  }

  /** The factory, or undefined with `status()` telling why. */
  tryFactory(target: string): ServiceFactory | undefined {
    const entry = this.#targets.get(target);
    return entry?.state === "ready" ? entry.factory : undefined;
  }

  /** "ready", "skipped: why", "failed: why", "pending", or "unknown". */
  status(target: string): string {
    const entry = this.#targets.get(target);
    return entry === undefined ? "unknown" : describe(entry);
  }

  targets(): TargetInfo[] {
    return [...this.#targets]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, entry]) => ({
        name,
        plugin: entry.plugin,
        capabilities: entry.state === "ready" ? entry.factory.capabilities : NO_CAPABILITIES,
        status: describe(entry),
      }));
  }

  /** Closes every ready factory; errors are collected, not thrown one by one. */
  async close(): Promise<Error[]> {
    const errors: Error[] = [];
    for (const entry of this.#targets.values()) {
      if (entry.state !== "ready" || entry.factory.close === undefined) continue;
      try {
        await entry.factory.close();
      } catch (err) {
        errors.push(err instanceof Error ? err : new Error(String(err)));
      }
    }
    return errors;
  }

  #claim(target: string, plugin: string): void {
    const existing = this.#targets.get(target);
    if (existing !== undefined) {
      throw new VmctlError(
        "ALREADY_EXISTS",
        `plugin ${plugin} registers target "${target}", already registered by ${existing.plugin}`,
        { details: { target } },
      );
    }
  }
}

function describe(entry: TargetEntry): string {
  switch (entry.state) {
    case "ready":
      return "ready";
    case "pending":
      return "pending";
    default:
      return `${entry.state}: ${entry.reason}`;
  }
}
