// vmctl-plugin-lxc: registers the "lxc" target. Thin: finds the lxc-* tools, makes the factory.
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import type { HostRequirement, PluginEnvironment, PluginRegistration } from "@vmctl/core/contract";
import { defaultSearchDirs, findBinary } from "@vmctl/core/target-kit";
import type { CgroupVersion } from "./config.js";
import { LxcFactory } from "./factory.js";
import { VmctlError } from "@vmctl/core/contract";
import { LxcTools, type LxcBinaries } from "./tools.js";

export { LxcFactory } from "./factory.js";
export type { LxcFactoryOptions } from "./factory.js";
export { LxcController } from "./controller.js";
export { LxcTools } from "./tools.js";
export type { LxcBinaries } from "./tools.js";
export { parseLxcSpec } from "./spec.js";
export type { LxcMount, LxcResources, LxcSpec } from "./spec.js";
export { baseConfig, rootfsConfig, serviceBlock } from "./config.js";
export type { CgroupVersion, ConfigOptions } from "./config.js";
export { networkLines } from "./network.js";

const TEMPLATES_DIR = "/usr/share/lxc/templates";
const COMMON_CONF = "/usr/share/lxc/config/common.conf";

/** Which cgroup keys take limits here: the unified hierarchy alone (v2), or v1 controllers (v1 and hybrid hosts). */
export function cgroupVersion(): CgroupVersion {
  return existsSync("/sys/fs/cgroup/cgroup.controllers") ? "v2" : "v1";
}

/**
 * Makes the lxc factory, or undefined (skipped, with the reason logged) when the host
 * cannot run it. Options (`targets.lxc` in the orchestrator config): `templatesDir`
 * (default /usr/share/lxc/templates), `commonConf` (a config to include in every
 * container, default LXC's common.conf when installed; "" for none). The old `bridge`
 * and `subnet` options are refused: networks are the orchestrator's now.
 */
export function initLxc(env: PluginEnvironment, searchDirs: readonly string[] = defaultSearchDirs()): LxcFactory | undefined {
  const find = (name: string) => findBinary(name, searchDirs);
  // Checked first: a stale config is reported even on a host that skips the target.
  for (const option of ["bridge", "subnet"]) {
    if (env.options[option] !== undefined) {
      throw new VmctlError(
        "INVALID_ARGUMENT",
        `targets.lxc.${option}: no longer an option: lxc services join the orchestrator's networks (vmctl network create NAME --subnet CIDR; vmctl run --network NAME)`,
        { details: { field: `targets.lxc.${option}`, target: "lxc" } },
      );
    }
  }
  const execute = find("lxc-execute");
  const stop = find("lxc-stop");
  const info = find("lxc-info");
  if (!execute || !stop || !info) {
    env.log.info("lxc target skipped: lxc-execute, lxc-stop and lxc-info are needed (install the lxc package)");
    return undefined;
  }
  if (process.getuid?.() !== 0) {
    env.log.info("lxc target skipped: it runs privileged containers and needs root");
    return undefined;
  }
  const bin: LxcBinaries = {
    execute,
    stop,
    info,
    attach: find("lxc-attach"),
    freeze: find("lxc-freeze"),
    unfreeze: find("lxc-unfreeze"),
    create: find("lxc-create"),
    destroy: find("lxc-destroy"),
  };
  // A private lxcpath: vmctl's containers are never mixed with /var/lib/lxc's.
  const lxcpath = join(env.stateDir, "containers");
  mkdirSync(lxcpath, { recursive: true, mode: 0o700 });
  const templatesDir = typeof env.options.templatesDir === "string" ? env.options.templatesDir : TEMPLATES_DIR;
  const commonConf = typeof env.options.commonConf === "string" ? env.options.commonConf || undefined : existsSync(COMMON_CONF) ? COMMON_CONF : undefined;
  const cgroup = cgroupVersion();
  env.log.debug("lxc target ready", { lxcpath, cgroup, templatesDir });
  const legacyAddresses = join(env.stateDir, "addresses");
  return new LxcFactory({ tools: new LxcTools(bin, lxcpath), templatesDir, commonConf, cgroup, log: env.log, legacyAddresses });
}

/** What `vmctl doctor` checks for this target (data; init finds the tools itself). Root is needed too. */
export const LXC_REQUIREMENTS: readonly HostRequirement[] = [
  { kind: "binary", name: "lxc-execute", package: "lxc", why: "runs each service as an application container", versionArgs: ["--version"] },
  { kind: "binary", name: "lxc-stop", package: "lxc", why: "stops a service's container" },
  { kind: "binary", name: "lxc-info", package: "lxc", why: "reads a container's state" },
  { kind: "binary", name: "lxc-attach", package: "lxc", optional: true, why: "exec into a running service" },
  { kind: "binary", name: "lxc-freeze", package: "lxc", optional: true, why: "pause and resume (with lxc-unfreeze)" },
];

const registration: PluginRegistration = {
  name: "vmctl-plugin-lxc",
  targets: [{ target: "lxc", requires: LXC_REQUIREMENTS, init: (env) => initLxc(env) }],
};

export default registration;
