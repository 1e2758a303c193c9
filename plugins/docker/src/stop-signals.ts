// How stop() ends a running container: the kit's terminate (SIGTERM, then SIGKILL once the
// grace period has passed), each signal in the kit's stop record before it is sent. Not
// `docker stop`: its grace period is whole seconds; timeoutMs is honoured exactly.
import type { Logger } from "@vmctl/core/contract";
import { recordSignal, terminate } from "@vmctl/core/target-kit";
import type { DockerEngine } from "./engine.js";
import { stopFileOf } from "./naming.js";

export interface TerminateRequest {
  readonly engine: DockerEngine;
  readonly containerId: string;
  /** For the log line. */
  readonly name: string;
  readonly serviceDir: string;
  readonly timeoutMs: number;
  readonly log: Logger;
}

/** Resolves whether the container ended (within the kit's wait after SIGKILL; the caller waits on otherwise). */
export function terminateContainer(r: TerminateRequest): Promise<boolean> {
  return terminate({
    send: async (signal) => {
      recordSignal(stopFileOf(r.serviceDir), signal);
      await r.engine.kill(r.containerId, signal);
    },
    endedWithin: (ms) => exitedWithin(r.engine, r.containerId, ms),
    graceMs: r.timeoutMs,
    onEscalate: () => r.log.info("docker container ignored SIGTERM; killing it", { container: r.name, timeoutMs: r.timeoutMs }),
  });
}

async function exitedWithin(engine: DockerEngine, id: string, ms: number): Promise<boolean> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), ms);
  try {
    await engine.waitNotRunning(id, abort.signal);
    return true;
  } catch (err) {
    if (abort.signal.aborted) return false;
    throw err;
  } finally {
    clearTimeout(timer);
  }
}
