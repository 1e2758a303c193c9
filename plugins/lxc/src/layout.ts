// Where one service's files live, how its LXC container is named, and how its resources
// are named in the ledger. The files ARE the controller's state: a new orchestrator
// process reads them back in adopt().
import { join } from "node:path";
import { hostnameFor, instanceNameFor } from "@vmctl/core/target-kit";
import type { OwnedResource } from "@vmctl/core/contract";

export interface ServiceLayout {
  /** Output and bookkeeping written by the shim, LXC and the controller (in ctx.serviceDir). */
  readonly runDir: string;
  readonly stdoutFile: string;
  readonly stderrFile: string;
  /** `lxc-execute`'s exit status (the workload's), written by the shim when it ends. */
  readonly exitFile: string;
  /** The shim's pid, written by the shim (and by the controller right after spawning it). */
  readonly shimPidFile: string;
  /** The container init's host pid, written by LXC's start-host hook: the container is up. */
  readonly initPidFile: string;
  /** LXC's own log (errors only), for failure details. */
  readonly lxcLogFile: string;
  /** Signals stop() sent, so the exit can be told apart from a crash after a restart. */
  readonly stopFile: string;
  /** Present while pause() holds the container frozen. */
  readonly pausedFile: string;
  /** Why start() refused before launching anything (e.g. the command is not in the rootfs). */
  readonly failedFile: string;
}

export function serviceLayout(serviceDir: string): ServiceLayout {
  const runDir = join(serviceDir, "run");
  return {
    runDir,
    stdoutFile: join(runDir, "stdout.log"),
    stderrFile: join(runDir, "stderr.log"),
    exitFile: join(runDir, "exit"),
    shimPidFile: join(runDir, "shim.pid"),
    initPidFile: join(runDir, "init.pid"),
    lxcLogFile: join(runDir, "lxc.log"),
    stopFile: join(runDir, "stop.json"),
    pausedFile: join(runDir, "paused"),
    failedFile: join(runDir, "failed.json"),
  };
}

/** Where LXC keeps one container (config, and the rootfs a template made) under the private lxcpath. */
export function containerDir(lxcpath: string, name: string): string {
  return join(lxcpath, name);
}

const LXC_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/**
 * The LXC container name for a service: "vmctl-" + id, or a digest when the id has
 * characters LXC (a directory name, a cgroup name "lxc.payload.NAME") should not get.
 */
export function containerNameFor(serviceId: string): string {
  return instanceNameFor(serviceId, (name) => LXC_NAME.test(serviceId) && name.length <= 64);
}

export { hostnameFor };

/** Ledger entries, one builder per kind so create() and adopt() agree on names. */
export const ledger = {
  dir(path: string): OwnedResource {
    return { kind: "dir", key: path };
  },
  /** The container's directory under the lxcpath; `template`: LXC made (and owns) its rootfs. */
  container(name: string, lxcpath: string, template: boolean): OwnedResource {
    return { kind: "lxc-container", key: name, data: { lxcpath, template } };
  },
  shim(name: string, pidFile: string, ref?: { pid: number; startTime: string }): OwnedResource {
    return { kind: "process", key: `shim:${name}`, data: ref ? { pidFile, pid: ref.pid, startTime: ref.startTime } : { pidFile } };
  },
};
