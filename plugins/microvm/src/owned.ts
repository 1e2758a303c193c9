// Reaping (ServiceFactory.owned / removeOwned) for the microvm target. What carries an
// owner's labels here is the VMM process: vmm-launch.ts starts each vmctl-vmm with the
// service's labels in its environment (VMCTL_LABEL_<n>=KEY=VALUE, the contract's
// encodeLabel). The files of a service (vm.json, logs, the writable layer) live in its
// serviceDir, which is the orchestrator's to remove; the API socket, named on the VMM's
// command line, goes with the process.
import { readFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { labelledOwner, labelsFromEnvironment, type OwnedThing } from "@vmctl/core/contract";
import { isAlive, processesWhere, startTimeOf } from "@vmctl/core/target-kit";
import { terminate } from "./vmm-process.js";

const KIND = "vmm-process";

interface LabelledVmm {
  readonly pid: number;
  readonly startTime: string;
  readonly socket: string | undefined;
  readonly labels: Readonly<Record<string, string>>;
}

/** Every live vmctl-vmm process labelled with `owner`. */
export async function ownedVmms(owner: string): Promise<OwnedThing[]> {
  const things: OwnedThing[] = [];
  for (const { pid } of processesWhere(isVmmCommand)) {
    const vmm = labelledVmm(pid);
    const labelled = vmm && labelledOwner(vmm.labels);
    if (!vmm || labelled?.owner !== owner) continue;
    things.push({
      kind: KIND,
      id: String(vmm.pid),
      owner,
      ...(labelled.serviceId === undefined ? {} : { serviceId: labelled.serviceId }),
      data: { startTime: vmm.startTime, ...(vmm.socket === undefined ? {} : { socket: vmm.socket }) },
    });
  }
  return things;
}

/** Ends the VMM (SIGTERM, then SIGKILL) if it is still that process with that owner, and removes its socket. */
export async function removeOwnedVmm(thing: OwnedThing): Promise<void> {
  const pid = Number(thing.id);
  const startTime = (thing.data as { startTime?: unknown } | undefined)?.startTime;
  if (!Number.isSafeInteger(pid) || typeof startTime !== "string") return;
  const ref = { pid, startTime };
  const vmm = isAlive(ref) ? labelledVmm(pid) : undefined;
  if (!vmm || vmm.startTime !== startTime || labelledOwner(vmm.labels)?.owner !== thing.owner) return;
  await terminate(ref);
  if (vmm.socket !== undefined) await rm(vmm.socket, { force: true });
}

/** A vmctl-vmm command line, as vmm-process.ts starts it. */
function isVmmCommand(argv: readonly string[]): boolean {
  return argv.includes("--api-sock") && argv.includes("--id");
}

/** The process as a labelled vmctl-vmm (an `--api-sock` on its command line, labels in its environment), or undefined. */
function labelledVmm(pid: number): LabelledVmm | undefined {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    if (!isVmmCommand(argv)) return undefined;
    const environ = readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");
    const labels = labelsFromEnvironment(environ);
    const startTime = startTimeOf(pid);
    if (startTime === undefined || Object.keys(labels).length === 0) return undefined;
    return { pid, startTime, socket: argv[argv.indexOf("--api-sock") + 1] || undefined, labels };
  } catch {
    // gone meanwhile, or not ours to read
    return undefined;
  }
}
