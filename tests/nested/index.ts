// The nested test host: real KVM (SVM with nested paging) inside a QEMU TCG guest, for
// tests that need more than this machine's PVM /dev/kvm offers. See README.md.
export { runInL1, type L1Run, type L1Result } from "./run-in-l1.js";
export type { L1Command } from "./command-script.js";
export { L1BootError, L1TimeoutError, NestedHostMissingError, type L1Diagnostics } from "./errors.js";
export { requireL1Kernel, requireQemu, nestedCacheDir, type L1Kernel } from "./paths.js";
export { ensureInitramfs, L1_MODULES, type L1Initramfs } from "./initramfs.js";
export { liveTiedChildren } from "./reaper.js";
export { hostRunner, nestedRunner, runOnHost, selectedRunner, requireLinuxCapableKvm, PVM_REFUSAL, type LinuxRunner } from "./runner.js";
export { requireGuestKernel, GuestKernelMissingError, type GuestKernel } from "./guest-kernel.js";
export { busyboxTree, packInitramfs, makeExt4, type GuestFiles } from "./guest-files.js";
