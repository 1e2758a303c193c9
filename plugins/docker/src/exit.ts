// How a container ended, from Docker's view of it and what stop() recorded. Pure.
import type { ExitInfo } from "@vmctl/core/contract";
import { signalOfStatus } from "@vmctl/core/target-kit";

export interface ExitEvidence {
  /** Docker's State.ExitCode (128+N when the container's init died of signal N). */
  readonly exitCode: number;
  /** The container was started at some point (State.StartedAt is set). */
  readonly started: boolean;
  /** Docker's State.Error: why a start failed ("exec: ...: not found"). */
  readonly error: string;
  readonly oomKilled: boolean;
  /** Signals stop() sent, in order (from the stop file); empty if stop() was never called. */
  readonly stopSignals: readonly string[];
  /** stop() ran before the service was ever started. */
  readonly stoppedBeforeStart?: boolean;
  readonly at: Date;
}

/** The signal encoded as 128+N in an exit status, if the status has that shape. */
export { signalOfStatus as signalOf };

export function interpretExit(e: ExitEvidence): ExitInfo {
  const at = e.at;
  if (e.stoppedBeforeStart) return { code: null, reason: "stopped", detail: "stopped before it was started", at };
  if (e.error !== "" && (!e.started || e.exitCode === 127 || e.exitCode === 126)) {
    // Docker could not exec the command (not found, not executable): the workload never ran.
    return { code: null, reason: "failed", detail: e.error, at };
  }
  const stopped = e.stopSignals.length > 0;
  const signal = signalOfStatus(e.exitCode);
  if (stopped && signal && e.stopSignals.includes(signal)) {
    // We sent this signal and Docker reports 128+N: the workload died of it.
    return { code: null, signal, reason: "stopped", at };
  }
  if (stopped) return { code: e.exitCode, reason: "stopped", at };
  if (e.oomKilled) return { code: e.exitCode, reason: "exited", detail: "killed by the kernel's OOM killer (memory limit reached)", at };
  if (signal) {
    return {
      code: e.exitCode,
      reason: "exited",
      detail: `code ${e.exitCode} is also how Docker reports death by ${signal} (128+${e.exitCode - 128})`,
      at,
    };
  }
  return { code: e.exitCode, reason: "exited", at };
}
