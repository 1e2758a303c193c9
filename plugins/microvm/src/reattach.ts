// adopt(): a controller made by a new orchestrator process picks up the VMM the ledger
// names. Alive (same pid and start time, or found by its socket when the pid was never
// recorded): reconnected and followed again. Dead: the controller reports the persisted
// exit (or "lost"). A start interrupted before the VM ran is finished off: its VMM is
// stopped and the exit is "failed".
import type { ExitInfo, TargetContext } from "@vmctl/core/contract";
import type { VmState } from "@vmctl/vmm-client";
import { vmctlError } from "./errors.js";
import { ledger, type RecordedVmm, type ServiceLayout } from "./layout.js";
import type { VmFollower } from "./vm-follower.js";
import { RPC } from "./vmm-connection.js";
import { isAlive, terminate, vmmsServing, type ProcessRef } from "./vmm-process.js";

/** How long a VMM that still runs gets to answer after an orchestrator restart. */
const REATTACH_TIMEOUT_MS = 5000;

/** What reattaching needs of the adopted controller. */
export interface Adopted {
  readonly id: string;
  readonly ctx: TargetContext;
  readonly layout: ServiceLayout;
  readonly follower: VmFollower;
  /** The VMM from now on: the live one found, or the recorded one that is gone. */
  setVmm(ref: ProcessRef | undefined): void;
  settle(exit: ExitInfo): void;
  exitKnown(): boolean;
}

export async function reattach(a: Adopted, recorded: RecordedVmm | undefined): Promise<void> {
  if (recorded === undefined) return;
  const l = a.layout;
  let ref = recorded.ref && isAlive(recorded.ref) ? recorded.ref : undefined;
  if (ref === undefined) {
    ref = vmmsServing(l.socketPath)[0];
    if (ref) a.ctx.resources.intend(ledger.vmm(a.id, l.socketPath, ref));
  }
  if (ref === undefined) {
    // Dead: state() reports the persisted exit, or "lost".
    a.setVmm(recorded.ref);
    if (recorded.ref === undefined) a.settle({ code: null, reason: "failed", detail: "the start was interrupted before the VMM ran", at: new Date() });
    return;
  }
  a.setVmm(ref);
  const conn = a.follower.connect();
  let vm: VmState;
  try {
    await conn.whenReady(ref, REATTACH_TIMEOUT_MS, l.vmmLogFile, a.id);
    vm = await conn.client.getState(RPC);
  } catch (err) {
    await a.follower.disconnect();
    // A VMM found alive may be on its way out (e.g. stopped after its VM exited):
    // gone by now, it is simply dead, and state() reports the persisted exit.
    if (!isAlive(ref)) return;
    throw vmctlError(err, `reconnecting to the VMM of ${a.id}`, a.id);
  }
  if (vm.phase === "configuring" || (a.exitKnown() && vm.phase !== "exited")) {
    a.settle({ code: null, reason: "failed", detail: "the orchestrator stopped while starting the VM; it never ran", at: new Date() });
    await a.follower.disconnect();
    await terminate(ref);
    return;
  }
  a.follower.follow();
  // Exited while nobody followed it: retire the VMM before the engine reads the exit.
  if (vm.phase === "exited") await a.follower.retired;
}
