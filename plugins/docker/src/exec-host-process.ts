// The exec'd command as a host process, for signal() and cancel(): Docker has no call to
// signal an exec, but its inspect gives the command's host pid, and vmctld (root, in the
// daemon's pid namespace) can signal that. The pid is trusted only when the process is in
// the container's cgroup (a daemon in another pid namespace, vmctld itself in a container,
// would name someone else) and it is then pinned by its start time (a reused pid is never
// signalled).
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { VmctlError, type ErrorDetails } from "@vmctl/core/contract";
import { startTimeOf, type ProcessRef } from "@vmctl/core/target-kit";
import type { ExecStatus } from "./engine.js";

/** Docker reports an exec running a moment before it reports its pid. */
const PID_WAIT_MS = 10_000;
const POLL_MS = 10;

/** The running command's process; undefined once it has ended (or never started). */
export async function execHostProcess(inspect: () => Promise<ExecStatus>, details: ErrorDetails): Promise<ProcessRef | undefined> {
  const deadline = Date.now() + PID_WAIT_MS;
  for (;;) {
    const status = await inspect();
    if (status.exitCode !== null) return undefined;
    if (status.running && status.pid !== 0) return hostProcessOf(status, details);
    if (Date.now() > deadline) {
      throw new VmctlError("UNAVAILABLE", `Docker did not report the pid of the exec'd command within ${PID_WAIT_MS} ms`, { details });
    }
    await sleep(POLL_MS);
  }
}

function hostProcessOf(status: ExecStatus, details: ErrorDetails): ProcessRef | undefined {
  const { pid, containerId } = status;
  if (!inCgroupOf(pid, containerId)) {
    if (startTimeOf(pid) === undefined) return undefined; // it ended meanwhile
    throw new VmctlError(
      "FAILED_PRECONDITION",
      `cannot signal the exec'd command: Docker names pid ${pid}, which on this host is not a process of container ${containerId.slice(0, 12)} (vmctld must share the Docker daemon's pid namespace)`,
      { details },
    );
  }
  const startTime = startTimeOf(pid);
  return startTime === undefined ? undefined : { pid, startTime };
}

/** Docker's cgroup of a container is named after its id, with either cgroup driver ("/docker/<id>", "docker-<id>.scope"). */
function inCgroupOf(pid: number, containerId: string): boolean {
  try {
    return containerId !== "" && readFileSync(`/proc/${pid}/cgroup`, "utf8").includes(containerId);
  } catch {
    return false;
  }
}
