// How a workload run under the shim ended, from what its files say: one reading for
// every shim-based target, worded for the runtime that ran it. Pure.
import type { ExitInfo } from "../../contract/index.js";
import { signalOfStatus } from "../signals.js";

/** What the shim's files (a ShimEnd) and the runtime say; the target fills in the last three. */
export interface ShimExitEvidence {
  /** The command's exit status (the shim's exit file); undefined when there is none. */
  readonly status: number | undefined;
  /** Signals stop() sent, in order; empty if stop() was never called. */
  readonly stopSignals: readonly string[];
  /** stop() ran before the service was ever started. */
  readonly stoppedBeforeStart?: boolean | undefined;
  readonly at: Date;
  /** The workload was started (the runtime wrote its pid file). */
  readonly started: boolean;
  /** The runtime's own last error, if it logged one: the root cause of a failed start. */
  readonly runtimeError?: string | undefined;
  /** start() refused before launching anything, and why. */
  readonly refused?: string | undefined;
}

/** The runtime's names, for the details a user reads. */
export interface RuntimeWording {
  /** What reports 128+N for a workload killed by signal N ("runc", "init.lxc"). */
  readonly reporter: string;
  /** The command the shim ran, for a start that failed ("the runtime", "lxc-execute"). */
  readonly command: string;
  /** A status the command also exits with for a failure of its own (lxc-execute: 255), and what to say. */
  readonly ownFailure?: { readonly status: number; readonly detail: string };
}

export function shimExit(e: ShimExitEvidence, wording: RuntimeWording): ExitInfo {
  const at = e.at;
  if (e.refused !== undefined) return { code: null, reason: "failed", detail: e.refused, at };
  if (e.stoppedBeforeStart) return { code: null, reason: "stopped", detail: "stopped before it was started", at };
  if (e.status === undefined) {
    return { code: null, reason: "lost", detail: "the container ended while its shim was gone, so its exit status is unknown", at };
  }
  if (!e.started) {
    return { code: null, reason: "failed", detail: e.runtimeError ?? `${wording.command} exited with status ${e.status} before the container started`, at };
  }
  const stopped = e.stopSignals.length > 0;
  const signal = signalOfStatus(e.status);
  // We sent this signal and the runtime reports 128+N: the workload died of it.
  if (stopped && signal && e.stopSignals.includes(signal)) return { code: null, signal, reason: "stopped", at };
  if (stopped) return { code: e.status, reason: "stopped", at };
  if (wording.ownFailure?.status === e.status) return { code: e.status, reason: "exited", detail: wording.ownFailure.detail, at };
  if (signal) {
    const detail = `status ${e.status} is also how ${wording.reporter} reports death by ${signal} (128+${e.status - 128})`;
    return { code: e.status, reason: "exited", detail, at };
  }
  return { code: e.status, reason: "exited", at };
}
