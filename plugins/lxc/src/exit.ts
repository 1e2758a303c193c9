// How a container ended, from what the shim, LXC and the controller left on disk. Pure.
import type { ExitInfo } from "@vmctl/core/contract";
import { shimExit, signalOfStatus, type ShimExitEvidence } from "@vmctl/core/target-kit";

/** The kit's evidence for a shim-run workload, with LXC's first logged error. */
export interface ExitEvidence extends Omit<ShimExitEvidence, "runtimeError"> {
  /** LXC's first error from its log, if it logged one: the root cause of a failed start. */
  readonly lxcError?: string | undefined;
}

/** The signal encoded as 128+N in an exit status, if the status has that shape. */
export { signalOfStatus as signalOf };

const WORDING = {
  reporter: "init.lxc",
  command: "lxc-execute",
  ownFailure: { status: 255, detail: "status 255 is also what lxc-execute reports when the command could not be executed" },
};

export function interpretExit(e: ExitEvidence): ExitInfo {
  return shimExit({ ...e, runtimeError: e.lxcError }, WORDING);
}
