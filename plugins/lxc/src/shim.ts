// How the lxc target finds its workload under the kit's shim: shim → lxc-execute →
// init.lxc → the workload. lxc-execute's status IS the workload's (init.lxc passes it
// through), so the shim's exit file holds it.
import { childrenOf, parentOf, readIntFile, startTimeOf, waitFor } from "@vmctl/core/target-kit";

/** How long init.lxc may take to fork the workload after the start-host hook ran. */
const WORKLOAD_FORK_MS = 500;

/** argv[0] of the shim, so it can be recognised in /proc (and by a reaper). */
export const SHIM_NAME = "vmctl-lxc-shim";

/**
 * The container init's host pid, when `initPid` (from the hook's file) really is the
 * init of the container run by this shim: shim → lxc-execute → init. A reused pid fails this.
 */
export function verifiedInit(initPid: number, shimPid: number): boolean {
  const monitor = parentOf(initPid);
  return monitor !== undefined && startTimeOf(initPid) !== undefined && parentOf(monitor) === shimPid;
}

/** The workload's host pid: init.lxc's oldest child, once init is verified to be this shim's container's. */
export async function workloadPid(initPidFile: string, shimPid: number | undefined): Promise<number | undefined> {
  const init = readIntFile(initPidFile);
  if (init === undefined || shimPid === undefined || !verifiedInit(init, shimPid)) return undefined;
  return waitFor(() => childrenOf(init)[0], { timeoutMs: WORKLOAD_FORK_MS, pollMs: 5 });
}
