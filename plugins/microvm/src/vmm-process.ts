// The vmctl-vmm process of one service: started detached (its own session, output to a
// file) so it outlives the orchestrator, and known afterwards by pid + start time from
// /proc, so a reused pid is never mistaken for ours. Spawning and stopping are the kit's.
import { labelEnvironment } from "@vmctl/core/contract";
import { processesWhere, spawnDetached, terminateProcess, type ProcessRef } from "@vmctl/core/target-kit";

export { isAlive, type ProcessRef } from "@vmctl/core/target-kit";

/** Live vmctl-vmm processes whose API socket is `socketPath` (for a crash between spawn and recording the pid). */
export function vmmsServing(socketPath: string): ProcessRef[] {
  return processesWhere((argv) => {
    const i = argv.indexOf("--api-sock");
    return i >= 0 && argv[i + 1] === socketPath;
  });
}

export interface SpawnOptions {
  readonly binary: string;
  readonly socketPath: string;
  readonly vmId: string;
  /** The VMM's stdout and stderr go here (appended). */
  readonly logFile: string;
  readonly cwd: string;
  /** Owner labels, exported to the VMM's environment (VMCTL_LABEL_<n>=key=value) for reapers. */
  readonly labels: Readonly<Record<string, string>>;
}

/** Starts vmctl-vmm in its own session; resolves once it has a pid and a start time. */
export async function spawnVmmDetached(options: SpawnOptions): Promise<ProcessRef> {
  const { pid, startTime } = await spawnDetached(options.binary, ["--api-sock", options.socketPath, "--id", options.vmId], {
    logFile: options.logFile,
    cwd: options.cwd,
    env: { ...process.env, ...labelEnvironment(options.labels) },
  });
  return { pid, startTime };
}

/** SIGTERM (the VMM force-stops a running VM and exits), then SIGKILL after `graceMs`. Resolves once it is gone. */
export async function terminate(ref: ProcessRef, graceMs = 2000): Promise<void> {
  await terminateProcess(ref, graceMs);
}
