import type { KvmInfo } from "@vmctl/native";
import type { RequirementStatus } from "@vmctl/core/contract";
import { evaluateRequirement } from "@vmctl/core/target-kit";
import { importEsm } from "../import-esm.js";
import { guestKernelStatus, guestSupport, readHostSigns, type GuestKernelStatus, type GuestSupport } from "./guests.js";
import { HOST_REQUIREMENTS } from "./host-requirements.js";
import { targetRequirements, type TargetRequirements, type TargetRequirementsOptions } from "./target-requirements.js";

/** A host-wide requirement (not any one target's) as this host has it. */
export type HostRequirementStatus = RequirementStatus & {
  /** The part of vmctl that needs it: `images` (vmctld's image store), `kernel` (`vmctl kernel build`). */
  readonly area: string;
};

/**
 * What `vmctl doctor` reports: the host's KVM, the guests it can run, the guest kernel,
 * what vmctl needs whatever the target, and what each target declares it needs.
 */
export interface HostReport {
  readonly kvm: KvmInfo;
  readonly guests: GuestSupport;
  readonly guestKernel: GuestKernelStatus;
  readonly host: readonly HostRequirementStatus[];
  readonly targets: readonly TargetRequirements[];
}

export type HostReportOptions = TargetRequirementsOptions;

export async function hostReport(options: HostReportOptions = {}): Promise<HostReport> {
  // Loaded here, not at the top: every other verb would pay for loading the addon (~10 ms).
  const { kvmInfo } = await importEsm<typeof import("@vmctl/native")>("@vmctl/native");
  const kvm = kvmInfo();
  const [host, targets] = await Promise.all([
    Promise.all(HOST_REQUIREMENTS.map(async ({ area, requirement }) => ({ area, ...(await evaluateRequirement(requirement, area, { versions: true })) }))),
    targetRequirements(options),
  ]);
  return { kvm, guests: guestSupport(kvm, readHostSigns()), guestKernel: guestKernelStatus(), host, targets };
}
