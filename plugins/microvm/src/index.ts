// vmctl-plugin-microvm: registers the "microvm" target. Thin: finds vmctl-vmm, checks
// /dev/kvm, makes the factory.
import { accessSync, closeSync, constants, mkdirSync, openSync } from "node:fs";
import type { HostRequirement, PluginEnvironment, PluginRegistration } from "@vmctl/core/contract";
import { checkoutVmmBuilds, findVmmBinary } from "@vmctl/vmm-client";
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

/**
 * What `vmctl doctor` checks for this target (data), looked up as init does: vmctl-vmm
 * from `targets.microvm.vmm`, `$VMCTL_VMM_BIN`, this checkout's builds (the paths
 * @vmctl/vmm-client's findVmmBinary tries), then PATH; /dev/kvm (or `targets.microvm.kvm`)
 * read-write.
 */
export const MICROVM_REQUIREMENTS: readonly HostRequirement[] = [
  {
    kind: "binary",
    name: "vmctl-vmm",
    option: "vmm",
    env: "VMCTL_VMM_BIN",
    paths: checkoutVmmBuilds(),
    fix: "npm run build (builds vmctl-vmm in the checkout), or put vmctl-vmm on PATH",
    why: "the VMM: one process per microVM",
    versionArgs: ["--version"],
  },
  {
    kind: "device",
    path: "/dev/kvm",
    access: "rw",
    option: "kvm",
    fix: "load kvm_amd or kvm_intel (modprobe), and give the daemon's user read-write access (the kvm group)",
    why: "KVM, which runs the guests",
  },
];

const registration: PluginRegistration = {
  name: "vmctl-plugin-microvm",
  targets: [{ target: "microvm", requires: MICROVM_REQUIREMENTS, init: (env) => initMicrovm(env) }],
};

export default registration;
