// vmctl-plugin-microvm: registers the "microvm" target. Thin: finds vmctl-vmm, checks
// /dev/kvm, makes the factory.
import { accessSync, closeSync, constants, mkdirSync, openSync } from "node:fs";
import type { PluginEnvironment, PluginRegistration } from "@vmctl/core/contract";
import { findVmmBinary } from "@vmctl/vmm-client";
import { MicrovmFactory } from "./factory.js";

export { DEFAULT_BOOT_ARGS, MICROVM_CAPABILITIES, MicrovmFactory } from "./factory.js";
export type { MicrovmFactoryOptions } from "./factory.js";
export { MicrovmController } from "./controller.js";
export { exitFromVm } from "./exit.js";
export { replayOverlap, VMM_CONSOLE_RING_BYTES } from "./console-log.js";
export { parseMicrovmSpec } from "./spec.js";
export type { MicrovmDrive, MicrovmSpec, ParseOptions } from "./spec.js";
export { DEFAULT_KERNEL_CACHE, defaultKernel, findKernel, kernelCacheDir, listKernels, requireDefaultKernel } from "./kernel-cache.js";
export type { CachedKernel, IgnoredEntry, KernelCacheListing } from "./kernel-cache.js";

/** Why KVM cannot be used here, or undefined when /dev/kvm opens read-write. */
export function kvmUnusable(device = "/dev/kvm"): string | undefined {
  try {
    closeSync(openSync(device, "r+"));
    return undefined;
  } catch (err) {
    return `${device} is not usable (${(err as NodeJS.ErrnoException).code ?? String(err)})`;
  }
}

/**
 * Makes the microvm factory, or undefined (skipped, the reason logged) when vmctl-vmm is
 * not built or KVM is unusable. Options (`targets.microvm` in the orchestrator config):
 * `vmm`: the vmctl-vmm binary to use instead of searching; `kvm`: the device to check.
 */
export function initMicrovm(env: PluginEnvironment): MicrovmFactory | undefined {
  const configured = env.options.vmm;
  const binary = typeof configured === "string" ? configured : findVmmBinary();
  if (!binary) {
    env.log.info("microvm target skipped: vmctl-vmm is not built (npm run build) and not on PATH");
    return undefined;
  }
  try {
    accessSync(binary, constants.X_OK);
  } catch {
    env.log.info(`microvm target skipped: ${binary} (targets.microvm.vmm) is not an executable file`);
    return undefined;
  }
  const kvm = typeof env.options.kvm === "string" ? env.options.kvm : "/dev/kvm";
  const why = kvmUnusable(kvm);
  if (why) {
    env.log.info(`microvm target skipped: ${why}`);
    return undefined;
  }
  mkdirSync(env.stateDir, { recursive: true, mode: 0o700 });
  env.log.debug("microvm target ready", { vmm: binary });
  return new MicrovmFactory({ binary, stateDir: env.stateDir, log: env.log });
}

const registration: PluginRegistration = {
  name: "vmctl-plugin-microvm",
  targets: [{ target: "microvm", init: (env) => initMicrovm(env) }],
};

export default registration;
