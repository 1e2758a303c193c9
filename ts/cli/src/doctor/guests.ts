// What guests this host can run, and the guest kernel: the part of `vmctl doctor` that
// answers "will a Linux microVM boot here?".
import { existsSync, readFileSync } from "node:fs";
import type { KvmInfo } from "@vmctl/native";
import { defaultKernel, kernelCacheDir } from "vmctl-plugin-microvm/kernel-cache";

/**
 * The kind of KVM: "pvm" (no hardware virtualization: guest code runs through KVM's
 * emulator), "svm" (AMD-V), "vmx" (Intel VT-x), "unknown" (KVM answers, but none of the
 * signs below), or "none" (no usable /dev/kvm).
 */
export type KvmKind = "pvm" | "svm" | "vmx" | "unknown" | "none";

export type GuestSupport = {
  readonly kvm: KvmKind;
  /** A stock Linux kernel can boot in a microVM here. */
  readonly linuxGuests: boolean;
  /** One sentence for the user. */
  readonly summary: string;
};

/** The default guest kernel (`vmctl kernel build`), or why there is none. */
export type GuestKernelStatus =
  | { readonly present: true; readonly cache: string; readonly key: string; readonly release: string | null; readonly path: string }
  | { readonly present: false; readonly cache: string; readonly problem: string };

/** Host facts the KVM kind is told from; read from /sys and /proc unless given. */
export interface HostSigns {
  /** Loaded KVM modules among kvm_amd, kvm_intel. */
  readonly modules: readonly string[];
  /** CPU flags among svm, vmx. */
  readonly cpuFlags: readonly string[];
}

export function readHostSigns(): HostSigns {
  const modules = ["kvm_amd", "kvm_intel"].filter((m) => existsSync(`/sys/module/${m}`));
  let cpuinfo = "";
  try {
    cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
  } catch {
    // No /proc (a chroot without it): the modules still tell; the summary says "unknown" otherwise.
  }
  const flagsLine = cpuinfo.split("\n").find((l) => l.startsWith("flags")) ?? "";
  const flags = new Set(flagsLine.split(/\s+/));
  return { modules, cpuFlags: ["svm", "vmx"].filter((f) => flags.has(f)) };
}

/** What the host's KVM can run. The loaded module wins over the CPU flag: it is what KVM uses. */
export function guestSupport(kvm: KvmInfo, signs: HostSigns): GuestSupport {
  if (!kvm.available) return { kvm: "none", linuxGuests: false, summary: "no usable KVM: microVMs cannot run here (containers and cloud targets can)" };
  if (kvm.pvm) {
    return {
      kvm: "pvm",
      linuxGuests: false,
      summary:
        "PVM KVM, no hardware virtualization: Linux guests cannot boot on this KVM, only vmctl's test guests; " +
        "real Linux is proven through the nested test host (tests/nested/, run by npm test)",
    };
  }
  const amd = signs.modules.includes("kvm_amd") || (!signs.modules.includes("kvm_intel") && signs.cpuFlags.includes("svm"));
  const intel = !amd && (signs.modules.includes("kvm_intel") || signs.cpuFlags.includes("vmx"));
  if (amd) return { kvm: "svm", linuxGuests: true, summary: "AMD SVM KVM (kvm_amd): Linux guests are supported" };
  if (intel) return { kvm: "vmx", linuxGuests: true, summary: "Intel VMX KVM (kvm_intel): Linux guests are supported" };
  return {
    kvm: "unknown",
    linuxGuests: true,
    summary: "KVM is not PVM, but neither kvm_amd/kvm_intel nor an svm/vmx CPU flag was found: Linux guests should boot (not proven on such a host)",
  };
}

/** The default guest kernel; a broken cache is reported as the problem, not thrown: doctor reports, it does not fail. */
export function guestKernelStatus(cache: string = kernelCacheDir()): GuestKernelStatus {
  try {
    const kernel = defaultKernel(cache);
    if (kernel === undefined) return { present: false, cache, problem: "none built: run `vmctl kernel build`" };
    return { present: true, cache, key: kernel.key, release: kernel.release, path: kernel.vmlinux };
  } catch (err) {
    return { present: false, cache, problem: err instanceof Error ? err.message : String(err) };
  }
}
