import type { KvmInfo } from "@vmctl/native";
import { importEsm } from "../import-esm.js";
import { checkDependencies, type DependencyStatus } from "./dependencies.js";
import { guestKernelStatus, guestSupport, readHostSigns, type GuestKernelStatus, type GuestSupport } from "./guests.js";

/** What `vmctl doctor` reports: the host's KVM, the guests it can run, the guest kernel and each target's dependencies. */
export interface HostReport {
  readonly kvm: KvmInfo;
  readonly guests: GuestSupport;
  readonly guestKernel: GuestKernelStatus;
  readonly dependencies: readonly DependencyStatus[];
}

export async function hostReport(): Promise<HostReport> {
  // Loaded here, not at the top: every other verb would pay for loading the addon (~10 ms).
  const { kvmInfo } = await importEsm<typeof import("@vmctl/native")>("@vmctl/native");
  const kvm = kvmInfo();
  return { kvm, guests: guestSupport(kvm, readHostSigns()), guestKernel: guestKernelStatus(), dependencies: await checkDependencies() };
}
