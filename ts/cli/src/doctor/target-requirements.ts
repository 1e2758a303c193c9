// Each target's host requirements, as its registration declares them (`requires`), for
// every target a daemon started with the same config and --plugin flags would load: the
// built-ins that are installed, the config file's `plugins`, then `--plugin`. Loaded the
// way vmctld loads them (@vmctl/server's plugin list, @vmctl/core/loader), but no target's
// init is called: what doctor reports is declared data, evaluated by the target kit.
import type { RequirementStatus } from "@vmctl/core/contract";
import { evaluateRequirements, parseRequirements } from "@vmctl/core/target-kit";
import { importEsm } from "../import-esm.js";

/** One target's requirements as this host has them. */
export interface TargetRequirements {
  readonly target: string;
  /** How the plugin was loaded: a built-in's package name, or the name or path it was given by. */
  readonly plugin: string;
  /** The target declares `requires` (possibly `[]`: nothing on the host). False: its init alone decides. */
  readonly declared: boolean;
  /** Each declared requirement, met or not, with the fix. */
  readonly requirements: readonly RequirementStatus[];
  /** Every requirement that is not optional is met (and the plugin loaded). */
  readonly ready: boolean;
  /** Why nothing could be evaluated: the plugin did not load, or its `requires` is malformed. */
  readonly problem?: string;
}

export interface TargetRequirementsOptions {
  /** `--plugin`: more plugins, by package name or path, after the config file's. */
  readonly plugins?: readonly string[];
  /** The daemon's config file (`--config`, `$VMCTL_CONFIG`): its `plugins` and `targets.<name>` options. */
  readonly config?: string;
}

/** Loads the plugins as vmctld would (without calling init) and evaluates what each target declares. */
export async function targetRequirements(options: TargetRequirementsOptions = {}): Promise<TargetRequirements[]> {
  // Loaded here, as the daemon verb does: the other verbs never load the server or the loader.
  const server = await importEsm<typeof import("@vmctl/server")>("@vmctl/server");
  const { loadPlugins } = await importEsm<typeof import("@vmctl/core/loader")>("@vmctl/core/loader");
  const config = options.config === undefined ? undefined : server.readConfig(options.config);
  const nodeModules = server.defaultNodeModules();
  const refs = server.pluginList({ plugins: [...(config?.plugins ?? []), ...(options.plugins ?? [])] }, nodeModules);
  const { loaded, failed } = await loadPlugins(refs, { nodeModules });

  const results: Promise<TargetRequirements>[] = [];
  for (const plugin of loaded) {
    for (const [i, registration] of plugin.registration.targets.entries()) {
      const { target } = registration;
      const raw = (registration as { requires?: unknown }).requires;
      results.push(
        (async (): Promise<TargetRequirements> => {
          let declared;
          try {
            declared = parseRequirements(raw, `targets[${i}].requires`);
          } catch (err) {
            return { target, plugin: plugin.source, declared: true, requirements: [], ready: false, problem: `its registration's ${(err as Error).message}` };
          }
          const requirements = await evaluateRequirements(declared, target, { options: config?.targets[target] ?? {}, versions: true });
          return { target, plugin: plugin.source, declared: raw !== undefined, requirements, ready: requirements.every((r) => r.met || r.requirement.optional) };
        })(),
      );
    }
  }
  for (const failure of failed) {
    const problem = `plugin not loaded: ${failure.error.message}`;
    const targets = failure.targets.length > 0 ? failure.targets : [`(${failure.source})`];
    for (const target of targets) results.push(Promise.resolve({ target, plugin: failure.source, declared: false, requirements: [], ready: false, problem }));
  }
  return Promise.all(results);
}
