// What phase a service is in and how it ended, from what EC2 and S3 say. Pure.
import type { ExitInfo, Phase } from "@vmctl/core/contract";
import { signalOfStatus } from "@vmctl/core/target-kit";
import type { InstanceView } from "./instances.js";

export interface Evidence {
  /** The instance, when one was found; undefined when none was ever made or EC2 forgot it. */
  readonly instance: InstanceView | undefined;
  /** An instance was made for the service (so its absence means it is gone). */
  readonly launched: boolean;
  /** The exit status the guest uploaded, if it did. */
  readonly reported: { readonly code: number; readonly at: Date } | undefined;
  /** vmctl asked the instance to stop (the stop tag, or this process's own stop()). */
  readonly stopRequested: boolean;
  /** stop() ran before the service was ever started. */
  readonly stoppedBeforeStart: boolean;
  readonly now: Date;
}

export interface Interpretation {
  readonly phase: Phase;
  readonly exit?: ExitInfo;
}

export function interpret(e: Evidence): Interpretation {
  if (e.stoppedBeforeStart) {
    return { phase: "exited", exit: { code: null, reason: "stopped", detail: "stopped before it was started", at: e.now } };
  }
  if (e.reported) {
    const { code, at } = e.reported;
    if (!e.stopRequested) return { phase: "exited", exit: { code, reason: "exited", at } };
    const signal = signalOfStatus(code);
    // The OS shutdown's SIGTERM killed the command: report the signal, as a runtime would.
    return { phase: "exited", exit: signal ? { code: null, signal, reason: "stopped", at } : { code, reason: "stopped", at } };
  }
  const i = e.instance;
  if (!i) {
    if (!e.launched) return { phase: "created" };
    return {
      phase: "exited",
      exit: {
        code: null,
        reason: e.stopRequested ? "stopped" : "lost",
        detail: "the instance is gone and its guest reported no exit status",
        at: e.now,
      },
    };
  }
  switch (i.state) {
    case "pending":
      return { phase: "starting" };
    case "running":
      return { phase: e.stopRequested ? "stopping" : "running" };
    case "stopping":
    case "shutting-down":
      return { phase: "stopping" };
    case "stopped":
    case "terminated": {
      const why = i.stateReason ? ` (${i.stateReason})` : "";
      if (e.stopRequested) {
        return { phase: "exited", exit: { code: null, reason: "stopped", detail: `instance ${i.id} ${i.state} before its guest reported an exit${why}`, at: e.now } };
      }
      return {
        phase: "exited",
        exit: {
          code: null,
          reason: "lost",
          detail:
            `instance ${i.id} is ${i.state}${why} and its guest reported no exit status: the AMI may lack sh or curl, ` +
            "the instance may have no route to S3, or the upload URLs expired",
          at: e.now,
        },
      };
    }
    default:
      return { phase: "running" };
  }
}
