// A service's state from Docker's view of its container and the stop record. Pure: the
// controller adds only what Docker cannot know (no container made yet, destroyed, gone).
import type { ExitInfo, ServiceState } from "@vmctl/core/contract";
import type { ContainerInfo } from "./engine.js";
import { interpretExit } from "./exit.js";
import type { StopRecord } from "@vmctl/core/target-kit";

/** A container still in play gives a state; one that has ended, how it ended. */
export type ContainerReading = { readonly state: ServiceState; readonly exit?: undefined } | { readonly exit: ExitInfo; readonly state?: undefined };

export function readContainer(info: ContainerInfo, stop: StopRecord | undefined): ContainerReading {
  const base = { instance: info.id };
  const pid = info.pid > 0 ? info.pid : undefined;
  const since = info.startedAt ?? info.created;
  switch (info.status) {
    case "created":
      // A start that failed (the command not found) leaves the container "created".
      if (info.error !== "" || stop?.beforeStart) return { exit: exitOf(info, stop) };
      return { state: { ...base, phase: "created", since: info.created } };
    case "running":
    case "restarting":
      return { state: { ...base, phase: (stop?.signals.length ?? 0) > 0 ? "stopping" : "running", pid, addresses: info.addresses, since } };
    case "paused":
      return { state: { ...base, phase: "paused", pid, addresses: info.addresses, since } };
    case "removing":
      return { state: { ...base, phase: "stopping", since } };
    default:
      return { exit: exitOf(info, stop) };
  }
}

/** How the service ended, from its container (undefined when none was made) and the stop record. */
export function exitOf(info: ContainerInfo | undefined, stop: StopRecord | undefined): ExitInfo {
  return interpretExit({
    exitCode: info?.exitCode ?? 0,
    started: info?.startedAt !== undefined,
    error: info?.error ?? "",
    oomKilled: info?.oomKilled ?? false,
    stopSignals: stop?.signals ?? [],
    stoppedBeforeStart: stop?.beforeStart ?? false,
    at: info?.finishedAt ?? new Date(),
  });
}
