// A microvm service's state as the orchestrator sees it, from what its VMM says of the VM.
import type { ExitInfo, ServiceState } from "@vmctl/core/contract";
import type { VmState } from "@vmctl/vmm-client";
import { exitFromVm } from "./exit.js";

export function exited(exit: ExitInfo, instance: string): ServiceState {
  return { phase: "exited", exit, instance, since: exit.at };
}

export interface AnsweringVmm {
  readonly pid: number;
  readonly instance: string;
  /** stop() (or destroy()) asked the VM to end: a VM still up is "stopping". */
  readonly stopRequested: boolean;
  /** The VMM's KVM is PVM: a KVM error exit says so. */
  readonly pvmHost: boolean;
}

/** The state of a VM whose VMM answered GetState. An exit goes through `settle` (first one wins) first. */
export function stateOfVm(vm: VmState, vmm: AnsweringVmm, settle: (exit: ExitInfo) => ExitInfo): ServiceState {
  const { pid, instance, stopRequested } = vmm;
  switch (vm.phase) {
    case "configuring":
      return { phase: "starting", pid, instance, since: vm.since };
    case "running":
      return { phase: stopRequested ? "stopping" : "running", pid, instance, since: vm.since };
    case "paused":
      return { phase: stopRequested ? "stopping" : "paused", pid, instance, since: vm.since };
    case "exited": {
      const exit = exitFromVm(vm.exit ?? { reason: "unknown", code: 0, detail: "" }, { stopRequested, at: vm.since, pvmHost: vmm.pvmHost });
      return exited(settle(exit), instance);
    }
  }
}
