// Opening what an orchestrator runs on, in the order recovery needs: the state store,
// the image store, the plugins and their targets, then every stored service reconciled
// (see reconciler.ts). The engine takes what this returns and follows the adopted services.
import { mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { PluginRegistration } from "../contract/plugin.js";
import type { Logger } from "../contract/target.js";
import { ImageStore } from "../images/image-store.js";
import type { ImageRecoveryReport } from "../images/store-recovery.js";
import type { NativeImageApi } from "../images/types.js";
import { childLogger, jsonLogger } from "../log/logger.js";
import { loadRegistry } from "../plugins/load-registry.js";
import type { PluginRegistry } from "../plugins/plugin-registry.js";
import { DEFAULT_STATE_DIR, StateStore } from "../state/state-store.js";
import { reconcile, type ReconcileReport } from "./reconciler.js";
import { ServiceNetworks, type NetworkingOptions, type NetworkReconcileReport } from "./service-networks.js";
import { imagesDir, serviceContext, servicesDir } from "./target-context.js";

export interface OrchestratorOptions {
  /** Where state lives; default /var/lib/vmctl. */
  readonly stateDir?: string;
  /**
   * Plugins to load: a path ("/opt/x", "./x") to a plugin package, a package name
   * ("vmctl-plugin-oci", "@acme/vmctl-plugin-x") looked up in `nodeModules`, or a
   * PluginRegistration already in hand (built-in targets).
   */
  readonly plugins?: readonly (string | PluginRegistration)[];
  /** node_modules folders to find named plugins in. */
  readonly nodeModules?: readonly string[];
  /** Also load every vmctl-plugin-* / @scope/vmctl-plugin-* found in `nodeModules`. */
  readonly discover?: boolean;
  /** Options per target (`targets.<name>` of the config), handed to the target's init. */
  readonly targetOptions?: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  readonly log?: Logger;
  /** Events a watcher may fall behind before its watch is ended with RESOURCE_EXHAUSTED (default 10,000). */
  readonly watchQueueLimit?: number;
  /**
   * The image engine (@vmctl/native) behind `ctx.images` and `orchestrator.images`.
   * Without it, images already held can be listed and removed, but nothing is pulled:
   * `ctx.images.use` of an absent image fails with FAILED_PRECONDITION.
   */
  readonly images?: {
    readonly native: NativeImageApi;
    /** Registries (`host:port`) spoken to over plain HTTP. */
    readonly insecureRegistries?: readonly string[];
  };
  /**
   * Networking (service-networks.ts): the host side (vmctld passes createHostNetwork())
   * and the subnet pool. Without `host`, a service asking for a network is refused.
   */
  readonly network?: NetworkingOptions;
}

/** Everything open, and what recovery found. */
export interface StartedState {
  readonly stateDir: string;
  readonly log: Logger;
  readonly store: StateStore;
  readonly images: ImageStore;
  readonly imageRecovery: ImageRecoveryReport;
  readonly registry: PluginRegistry;
  readonly recovery: ReconcileReport;
  readonly networks: ServiceNetworks;
  /** What start-up found of ours on the host that nothing accounts for, and removed. */
  readonly networkRecovery: NetworkReconcileReport;
}

/** Opens the state, the image store and the plugins, and recovers every stored service. On failure the store is closed again. */
export async function startUp(options: OrchestratorOptions): Promise<StartedState> {
  const stateDir = resolve(options.stateDir ?? DEFAULT_STATE_DIR);
  const log = options.log ?? jsonLogger();
  const store = StateStore.open(stateDir);
  try {
    await mkdir(servicesDir(stateDir), { recursive: true, mode: 0o700 });
    const images = new ImageStore({
      storeDir: imagesDir(stateDir),
      db: store.database,
      ...(options.images === undefined ? {} : { native: options.images.native }),
      ...(options.images?.insecureRegistries === undefined ? {} : { insecureRegistries: options.images.insecureRegistries }),
      log: childLogger(log, { component: "images" }),
    });
    // Before any service is adopted: a target may ask for its image while adopting.
    const imageRecovery = await images.recover();
    const networks = new ServiceNetworks(store, options.network ?? {}, childLogger(log, { component: "network" }));
    const registry = await openTargets(options, stateDir, log);
    const recovery = await reconcile({
      store,
      registry,
      servicesDir: servicesDir(stateDir),
      context: (s) => serviceContext(store, images, stateDir, s.id, s.target, log, networks.context(s.id)),
      networks,
      log,
    });
    // After the services: leases of services just forgotten are gone, so what is left on the host for them is found here.
    const networkRecovery = await networks.reconcile();
    return { stateDir, log, store, images, imageRecovery, registry, recovery, networks, networkRecovery };
  } catch (err) {
    store.close();
    throw err;
  }
}

/**
 * Loads the plugins and initialises their targets, each with its own state directory
 * (`<stateDir>/targets/<target>`) and options. A target that failed or does not apply
 * keeps that status (`targets()` reports it), is logged here, and takes no other down.
 */
async function openTargets(options: OrchestratorOptions, stateDir: string, log: Logger): Promise<PluginRegistry> {
  const registry = await loadRegistry(options, log);
  await registry.init((target, plugin) => ({
    stateDir: join(stateDir, "targets", target),
    options: options.targetOptions?.[target] ?? {},
    // The plugin's lines are labelled as its own, not as the daemon's.
    log: childLogger(log, { component: "plugin", plugin, target }),
  }));
  for (const t of registry.targets()) {
    if (t.status !== "ready") log.warn("target not usable", { target: t.name, plugin: t.plugin, status: t.status });
  }
  return registry;
}
