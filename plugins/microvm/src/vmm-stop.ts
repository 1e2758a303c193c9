// Ending a service's VMM and giving back what the service held. Stop escalates from the
// gentle to the sure: Ctrl-Alt-Del with a grace (the VMM forces the VM off when it runs
// out), then SIGTERM when the VMM does not answer. Every release also leaves the ledger.
import { rmSync } from "node:fs";
import { VmctlError, type Logger, type ResourceLedger } from "@vmctl/core/contract";
import type { VmmClient } from "@vmctl/vmm-client";
import { ledger, perVmFiles, type ServiceLayout } from "./layout.js";
import { terminate, vmmsServing, type ProcessRef } from "./vmm-process.js";

/** Ctrl-Alt-Del, then a forced stop once `graceMs` has passed (in the VMM); SIGTERM if the VMM does not take it. */
export async function shutdownOrTerminate(client: VmmClient | undefined, vmm: ProcessRef | undefined, graceMs: number, log: Logger): Promise<void> {
  try {
    if (!client) throw new VmctlError("UNAVAILABLE", "no connection to the VMM");
    await client.shutdown(graceMs);
  } catch (err) {
    // The VMM does not answer: SIGTERM makes it force-stop the VM and exit.
    log.warn("VMM did not take Shutdown; terminating it", { error: String(err) });
    if (vmm) await terminate(vmm);
  }
}

/** Every VMM of the service gone: the known one, and any whose pid was never recorded (killed between spawn and ledger), found by its socket. */
export async function terminateAll(vmm: ProcessRef | undefined, socketPath: string): Promise<void> {
  if (vmm) await terminate(vmm);
  for (const stray of vmmsServing(socketPath)) await terminate(stray);
}

/** The VMM's socket removed, and its process and socket released from the ledger. */
export function releaseVmm(resources: ResourceLedger, serviceId: string, socketPath: string): void {
  rmSync(socketPath, { force: true });
  resources.release("socket", socketPath);
  const entry = ledger.vmm(serviceId, socketPath);
  resources.release(entry.kind, entry.key);
}

/** destroy(): every per-VM file (and the kept copyOut paths) removed and released (never the image's base disk). */
export function removePerVmFiles(resources: ResourceLedger, l: ServiceLayout): void {
  for (const file of perVmFiles(l)) {
    rmSync(file, { force: true });
    resources.release("file", file);
  }
  rmSync(l.capturedDir, { recursive: true, force: true });
  resources.release("dir", l.capturedDir);
}
