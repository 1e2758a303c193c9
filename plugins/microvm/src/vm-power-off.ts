// An image VM's end after its workload. The agent syncs and powers the VM off (itself, or
// when told to by Shutdown after the copyOut paths were kept), but Linux without a
// power-off handler (no ACPI here) turns that into a halt (`reboot: System halted`): the
// vCPU halts and the VM never ends on its own. So the VMM forces it off once the console
// says the devices are down.
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "@vmctl/core/contract";
import type { VmmClient } from "@vmctl/vmm-client";
import { RPC } from "./vmm-connection.js";

/** After the workload's exit: how long the VM gets to power itself off before it is forced. */
export const POWER_OFF_GRACE_MS = 5000;

/**
 * Once `reboot: System halted` (or `reboot: Power down`) is on the console the disks are
 * flushed, and the VM is forced off at once; a VM that says nothing is forced after
 * `graceMs` (0: at once). Nothing to do once the VM has ended or the VMM is gone.
 */
export async function endVm(vmmClient: () => VmmClient | undefined, consoleFile: string, log: Logger, graceMs: number): Promise<void> {
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    const client = vmmClient();
    const vm = await client?.getState(RPC).catch(() => undefined);
    if (!client || vm === undefined || vm.phase === "exited") return;
    if (poweredDown(consoleFile)) break;
    await sleep(50);
  }
  log.debug("forcing the VM off after its workload");
  await vmmClient()
    ?.shutdown(0, { timeoutMs: 5000 })
    .catch(() => undefined);
}

/**
 * The kernel said it powers down or, with no power-off handler (Linux then turns a power
 * off into a halt), that it halted: both after the devices' shutdown.
 */
function poweredDown(consoleFile: string): boolean {
  let fd: number | undefined;
  try {
    fd = openSync(consoleFile, "r");
    const size = fstatSync(fd).size;
    const tail = Buffer.alloc(Math.min(size, 8192));
    readSync(fd, tail, 0, tail.length, size - tail.length);
    return /reboot: (Power down|System halted)/.test(tail.toString("latin1"));
  } catch {
    return false;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
