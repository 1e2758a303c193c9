// How a container ended, from what the shim, LXC and the controller left on disk. Pure.
import type { ExitInfo } from "@vmctl/core/contract";
import { signalOfStatus } from "@vmctl/core/target-kit";

export interface ExitEvidence {
  /** The status `lxc-execute` exited with (the shim's exit file); undefined if there is none. */
  readonly status: number | undefined;
  /** The container came up (LXC's start-host hook wrote the init pid). */
  readonly started: boolean;
  /** Signals stop() sent, in order (from the stop file); empty if stop() was never called. */
  readonly stopSignals: readonly string[];
  /** LXC's first error from its log, if it logged one: the root cause of a failed start. */
  readonly lxcError?: string | undefined;
  /** start() refused before launching anything, and why. */
  readonly refused?: string | undefined;
  /** stop() ran before the service was ever started. */
  readonly stoppedBeforeStart?: boolean;
  readonly at: Date;
}

/** The signal encoded as 128+N in an exit status, if the status has that shape. */
export { signalOfStatus as signalOf };

export function interpretExit(e: ExitEvidence): ExitInfo {
  const at = e.at;
  if (e.refused !== undefined) return { code: null, reason: "failed", detail: e.refused, at };
  if (e.stoppedBeforeStart) return { code: null, reason: "stopped", detail: "stopped before it was started", at };
  if (e.status === undefined) {
    return {
      code: null,
      reason: "lost",
      detail: "the container ended while its shim was gone, so its exit status is unknown",
      at,
    };
  }
  if (!e.started) {
    return {
      code: null,
      reason: "failed",
      detail: e.lxcError ?? `lxc-execute exited with status ${e.status} before the container started`,
      at,
    };
  }
  const stopped = e.stopSignals.length > 0;
  const signal = signalOfStatus(e.status);
  if (stopped && signal && e.stopSignals.includes(signal)) {
    // We sent this signal and init.lxc reports 128+N: the workload died of it.
    return { code: null, signal, reason: "stopped", at };
  }
  if (stopped) return { code: e.status, reason: "stopped", at };
  if (e.status === 255) {
    return {
      code: 255,
      reason: "exited",
      detail: "status 255 is also what lxc-execute reports when the command could not be executed",
      at,
    };
  }
  if (signal) {
    return {
      code: e.status,
      reason: "exited",
      detail: `status ${e.status} is also how init.lxc reports death by ${signal} (128+${e.status - 128})`,
      at,
    };
  }
  return { code: e.status, reason: "exited", at };
}
