import type { KvmInfo } from "@vmctl/native";
import { importEsm } from "../import-esm.js";
import { checkDependencies, type DependencyStatus } from "./dependencies.js";

/** What `vmctl doctor` reports: the host's KVM and each target's dependencies. */
export interface HostReport {
  readonly kvm: KvmInfo;
  readonly dependencies: readonly DependencyStatus[];
}

export async function hostReport(): Promise<HostReport> {
  // Loaded here, not at the top: every other verb would pay for loading the addon (~10 ms).
  const { kvmInfo } = await importEsm<typeof import("@vmctl/native")>("@vmctl/native");
  return { kvm: kvmInfo(), dependencies: await checkDependencies() };
}
