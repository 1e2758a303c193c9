// Translating a controller's ServiceState into the fields the store keeps.
import type { ExitInfo, ServiceState } from "../contract/types.js";
import type { ServicePatch } from "../state/state-store.js";

/** The exit recorded for a service that is gone without a trace of how it ended. */
export function lostExit(detail: string): ExitInfo {
  return { code: null, reason: "lost", detail, at: new Date() };
}

/** Store fields from a controller's state. `hasReadiness`: ready waits for the check. */
export function patchFromState(state: ServiceState, hasReadiness: boolean): ServicePatch {
  const exited = state.phase === "exited";
  return {
    phase: state.phase,
    exit: exited ? (state.exit ?? lostExit("the target reported the service exited without exit details")) : null,
    pid: exited ? null : (state.pid ?? null),
    instance: state.instance ?? null,
    addresses: state.addresses ?? [],
    ...(exited || state.phase !== "running" ? { ready: false } : hasReadiness ? {} : { ready: true }),
  };
}
