// Where one service's files live inside its serviceDir, and how its resources are named
// in the ledger. The files ARE the controller's state: a new orchestrator process reads
// them back in adopt().
import { join } from "node:path";
import { hostnameFor, instanceNameFor } from "@vmctl/core/target-kit";
import type { OwnedResource } from "@vmctl/core/contract";

export interface ServiceLayout {
  /** The OCI bundle: config.json (the rootfs stays where the spec says). */
  readonly bundleDir: string;
  readonly configFile: string;
  /** Output and bookkeeping written by the shim and the runtime. */
  readonly runDir: string;
  readonly stdoutFile: string;
  readonly stderrFile: string;
  /** `runc run`'s exit status, written by the shim when it ends. */
  readonly exitFile: string;
  /** The shim's pid, written by the shim (and by the controller right after spawning it). */
  readonly shimPidFile: string;
  /** The container init's host pid, written by the runtime once the workload started. */
  readonly containerPidFile: string;
  /** The runtime's own log (JSON lines), for failure details. */
  readonly runtimeLogFile: string;
  /** Signals stop() sent, so the exit can be told apart from a crash after a restart. */
  readonly stopFile: string;
}

export function serviceLayout(serviceDir: string): ServiceLayout {
  const bundleDir = join(serviceDir, "bundle");
  const runDir = join(serviceDir, "run");
  return {
    bundleDir,
    configFile: join(bundleDir, "config.json"),
    runDir,
    stdoutFile: join(runDir, "stdout.log"),
    stderrFile: join(runDir, "stderr.log"),
    exitFile: join(runDir, "exit"),
    shimPidFile: join(runDir, "shim.pid"),
    containerPidFile: join(runDir, "container.pid"),
    runtimeLogFile: join(runDir, "runtime.log"),
    stopFile: join(runDir, "stop.json"),
  };
}

/**
 * The service annotation's key before owner labels had one format (the contract's
 * SERVICE_LABEL, through serviceLabels()): containers made then carry this instead.
 * Reaping still reads it, so they are found too; adopt() never needed it (it goes by the
 * container id, which has not changed).
 */
export const LEGACY_SERVICE_ANNOTATION = "org.vmctl.service";

const RUNC_ID = /^[\w+.-]{1,1024}$/;

/** The runtime container id for a service: "vmctl-" + id, or a digest when id has characters runc refuses. */
export function containerIdFor(serviceId: string): string {
  return instanceNameFor(serviceId, (name) => RUNC_ID.test(name) && name.length <= 200);
}

export { hostnameFor };

/** Ledger entries, one builder per kind so create() and adopt() agree on names. */
export const ledger = {
  dir(path: string): OwnedResource {
    return { kind: "dir", key: path };
  },
  container(runtime: string, id: string, root: string): OwnedResource {
    return { kind: `${runtime}-container`, key: id, data: { root } };
  },
  shim(containerId: string, pidFile: string): OwnedResource {
    return { kind: "process", key: `shim:${containerId}`, data: { pidFile } };
  },
};
