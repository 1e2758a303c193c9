// @vmctl/core: the target contract, errors, and the orchestrator engine.
// Everything plugins and clients see (contract, API types, errors) comes from one list.
export * from "./contract/index.js";

// The engine and its parts.
export { Orchestrator, DEFAULT_STOP_TIMEOUT_MS } from "./orchestrator/engine.js";
export type { CreateOptions, OrchestratorOptions } from "./orchestrator/engine.js";
export { ImageStore, NO_IMAGE_ENGINE } from "./images/image-store.js";
export { nativeImageEngine } from "./images/native-engine.js";
export type { ImageStoreOptions, PruneOptions, PruneResult, RemoveImageOptions, RemoveImageResult } from "./images/image-store.js";
export type { ImageRecoveryReport } from "./images/store-recovery.js";
export { checkReference, IMAGE_FIELD, MAX_REFERENCE_BYTES, normaliseReference } from "./images/reference.js";
export type { ReferenceOptions } from "./images/reference.js";
export type { AdoptedService, ReconcileReport } from "./orchestrator/reconciler.js";
export { OWNER_LABEL, SERVICE_LABEL } from "./orchestrator/target-context.js";
export { parseSelectors, matchesSelectors } from "./orchestrator/label-selector.js";
export type { LabelSelector } from "./orchestrator/label-selector.js";
export { probeFor } from "./orchestrator/readiness/readiness-probe.js";
export type { ReadinessProbe } from "./orchestrator/readiness/readiness-probe.js";
export { waitUntilReady } from "./orchestrator/readiness/wait-until-ready.js";
export type { WaitOptions } from "./orchestrator/readiness/wait-until-ready.js";
export { StateStore, DATABASE_FILE } from "./state/state-store.js";
export type { IntegrityReport, NewService, ServicePatch } from "./state/state-store.js";
export type { Lifecycle, StoredService } from "./state/service-row.js";
export { SqliteResourceLedger } from "./state/resource-ledger.js";
export { NetworkStore } from "./state/network-store.js";
export type { LeaseRequest, StoredLease, StoredNetwork } from "./state/network-store.js";
export { checkSubnetPool, DEFAULT_POOL, DEFAULT_POOL_PREFIX, resolversIn, ServiceNetworks } from "./orchestrator/service-networks.js";
export type { NetworkingOptions, NetworkReconcileReport } from "./orchestrator/service-networks.js";
export { bridgeName, hostDeviceName, macFor } from "./network/network-names.js";
export { createHostNetwork } from "./network/host-network.js";
export type { HostNetworkOptions, NativeLink, NativeNetworkApi } from "./network/host-network.js";
export { SCHEMA_VERSION } from "./state/schema.js";
export { PluginRegistry } from "./plugins/plugin-registry.js";
export { discoverPlugins, isPathReference, loadPlugin, loadPluginFromDir, loadPlugins, PLUGIN_NAME } from "./plugins/plugin-loader.js";
export type { LoadedPlugin, PluginLoadFailure } from "./plugins/plugin-loader.js";
export { readPluginPackage } from "./plugins/plugin-manifest.js";
export type { PluginPackage } from "./plugins/plugin-manifest.js";
export { childLogger, jsonLogger, silentLogger } from "./log/logger.js";
export type { JsonLoggerOptions, LogLevel } from "./log/logger.js";
