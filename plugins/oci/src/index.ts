// vmctl-plugin-oci: registers the "oci" target. Thin: finds the runtimes, makes the factory.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { defaultSearchDirs, findBinary } from "@vmctl/core/target-kit";
import type { HostRequirement, PluginEnvironment, PluginRegistration } from "@vmctl/core/contract";
import { OciFactory } from "./factory.js";
import { OciRuntime } from "./runtime.js";
import type { OciRuntimeName } from "./spec.js";

export { OCI_CAPABILITIES, OciFactory } from "./factory.js";
export { OciController } from "./controller.js";
export { OciRuntime } from "./runtime.js";
export { parseOciSpec } from "./spec.js";
export type { OciMount, OciResources, OciRuntimeName, OciSpec } from "./spec.js";
export { defaultSearchDirs, findBinary } from "@vmctl/core/target-kit";
export { buildRuntimeConfig } from "./bundle.js";
export type { BundleOptions, OciRuntimeConfig } from "./bundle.js";

const RUNTIME_NAMES: readonly OciRuntimeName[] = ["runc", "crun"];

/**
 * Makes the oci factory. Options (`targets.oci` in the orchestrator config):
 * `runc` / `crun`: a binary path to use instead of searching PATH.
 */
export function initOci(env: PluginEnvironment, searchDirs: readonly string[] = defaultSearchDirs()): OciFactory | undefined {
  const runtimes = new Map<OciRuntimeName, OciRuntime>();
  for (const name of RUNTIME_NAMES) {
    const configured = env.options[name];
    const binary = typeof configured === "string" ? configured : findBinary(name, searchDirs);
    if (!binary) continue;
    const root = join(env.stateDir, name);
    mkdirSync(root, { recursive: true, mode: 0o700 });
    runtimes.set(name, new OciRuntime(name, binary, root));
  }
  if (!runtimes.has("runc") && !runtimes.has("crun")) {
    env.log.info("oci target skipped: neither runc nor crun was found on PATH");
    return undefined;
  }
  env.log.debug("oci target ready", { runtimes: [...runtimes.values()].map((r) => r.binary) });
  return new OciFactory(runtimes, env.log);
}

/** What `vmctl doctor` checks for this target (data; init finds the runtimes itself). */
export const OCI_REQUIREMENTS: readonly HostRequirement[] = [
  { kind: "binary", name: "runc", or: ["crun"], package: "runc", why: "the OCI runtime that runs each service (crun will do)", versionArgs: ["--version"] },
];

const registration: PluginRegistration = {
  name: "vmctl-plugin-oci",
  targets: [{ target: "oci", requires: OCI_REQUIREMENTS, init: (env) => initOci(env) }],
};

export default registration;
