// How a container ended, from what the shim and the controller left on disk. Pure.
import type { ExitInfo } from "@vmctl/core/contract";
import { shimExit, signalOfStatus, type ShimExitEvidence } from "@vmctl/core/target-kit";

/** The kit's evidence for a shim-run workload; the runtime's error is runc's JSON log's. */
export type ExitEvidence = ShimExitEvidence;

/** The signal encoded as 128+N in an exit status, if the status has that shape. */
export { signalOfStatus as signalOf };

export function interpretExit(e: ExitEvidence): ExitInfo {
  return shimExit(e, { reporter: "runc", command: "the runtime" });
}
