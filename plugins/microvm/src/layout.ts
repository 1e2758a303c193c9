// Where one service's files live, where its API socket goes, and how its resources are
// named in the ledger. The files ARE the controller's state: a new orchestrator process
// reads them back in adopt().
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { OwnedResource } from "@vmctl/core/contract";
import type { ProcessRef } from "./vmm-process.js";

/** sun_path is 108 bytes including the terminating NUL. */
export const MAX_SOCKET_PATH_BYTES = 107;

export interface ServiceLayout {
  readonly serviceDir: string;
  /** The VM as it will be configured (spec with defaults), written by prepare(). */
  readonly vmFile: string;
  /** The VMM's API socket: in serviceDir when the path is short enough, else in a short dir. */
  readonly socketPath: string;
  /** The guest's serial console, appended by the controller while it follows the VM. */
  readonly consoleFile: string;
  /** The VMM's own log (stdout + stderr). */
  readonly vmmLogFile: string;
  /** The VMM process (pid + start time, socket), written right after spawning it. */
  readonly vmmFile: string;
  /** The final exit (JSON), written as soon as it is known. */
  readonly exitFile: string;
  /** stop() was called (JSON), so the exit reads as "stopped" even after a restart. */
  readonly stopFile: string;
  /** With an image: the VM's writable layer (drive scratch), made by prepare(). */
  readonly scratchFile: string;
  /** With the agent: the VMM's hybrid vsock socket (guest connections go to `<it>_<port>`). */
  readonly vsockPath: string;
  /** With the agent: the local socket relayed to the agent's vsock port (grpc-js dials it). */
  readonly relayPath: string;
  /** With the agent: the workload's stdout and stderr, appended as they come (the service's logs). */
  readonly stdoutFile: string;
  readonly stderrFile: string;
  /** With the agent and copyOut: the paths kept when the workload ended (workspace-out.ts). */
  readonly capturedDir: string;
  /**
   * Where the image engine builds scratchFile before renaming it into place: left behind
   * only by a crash mid-create, it must go before the next create (which refuses to
   * overwrite it) and at destroy.
   */
}

const FILES = {
  vm: "vm.json",
  console: "console.log",
  vmmLog: "vmm.log",
  vmm: "vmm.json",
  exit: "exit.json",
  stop: "stop.json",
  scratch: "scratch.ext4",
  stdout: "stdout.log",
  stderr: "stderr.log",
  captured: "captured",
};

/** The agent's two sockets; default: in serviceDir (see {@link agentSocketsFor} for deep dirs). */
export interface AgentSockets {
  readonly vsock: string;
  readonly relay: string;
}

export function serviceLayout(serviceDir: string, socketPath: string, agentSockets?: AgentSockets): ServiceLayout {
  return {
    serviceDir,
    socketPath,
    vsockPath: agentSockets?.vsock ?? join(serviceDir, "vsock.sock"),
    relayPath: agentSockets?.relay ?? join(serviceDir, "agent.sock"),
    stdoutFile: join(serviceDir, FILES.stdout),
    stderrFile: join(serviceDir, FILES.stderr),
    capturedDir: join(serviceDir, FILES.captured),
    vmFile: join(serviceDir, FILES.vm),
    consoleFile: join(serviceDir, FILES.console),
    vmmLogFile: join(serviceDir, FILES.vmmLog),
    vmmFile: join(serviceDir, FILES.vmm),
    exitFile: join(serviceDir, FILES.exit),
    stopFile: join(serviceDir, FILES.stop),
    scratchFile: join(serviceDir, FILES.scratch),
  };
}

/**
 * Every per-VM file destroy() removes (the socket separately: it may live elsewhere).
 * Never the image's base disk: that belongs to the image store, shared by every VM of the image.
 */
export function perVmFiles(l: ServiceLayout): string[] {
  return [l.vmFile, l.consoleFile, l.vmmLogFile, l.vmmFile, l.exitFile, l.stopFile, l.scratchFile, l.stdoutFile, l.stderrFile];
}

/**
 * The API socket path for a service: `<serviceDir>/vmm.sock` when it fits in a unix
 * socket address, else `<targetStateDir>/run/<hash>.sock`, else
 * `<tmpdir>/vmctl-microvm/<hash>.sock` (the hash is of the serviceDir: stable per service).
 */
export function socketPathFor(serviceDir: string, targetStateDir: string, name = "vmm", room = 0): string {
  const hash = createHash("sha256").update(serviceDir).digest("hex").slice(0, 20);
  const file = name === "vmm" ? `${hash}.sock` : `${hash}.${name}.sock`;
  const candidates = [join(serviceDir, `${name}.sock`), join(targetStateDir, "run", file), join(tmpdir(), "vmctl-microvm", file)];
  const fits = candidates.find((p) => Buffer.byteLength(p) + room <= MAX_SOCKET_PATH_BYTES);
  if (fits === undefined) throw new Error(`no unix socket path short enough for ${serviceDir}`);
  return fits;
}

/**
 * The agent's sockets by the same rule as the API socket's: the VMM's vsock socket (with
 * room for the `_<port>` suffix of guest-initiated connections) and the relay's.
 */
export function agentSocketsFor(serviceDir: string, targetStateDir: string): AgentSockets {
  return { vsock: socketPathFor(serviceDir, targetStateDir, "vsock", "_4294967295".length), relay: socketPathFor(serviceDir, targetStateDir, "agent") };
}

/** The VM id given to the VMM (`--id`), reported as state().instance. */
export function vmIdFor(serviceId: string): string {
  return `vmctl-${serviceId}`;
}

/** Ledger entries, one builder per kind so create() and adopt() agree on names. */
export const ledger = {
  /** The VMM process. Intended before spawning (with the socket only), then updated with pid + start time. */
  vmm(serviceId: string, socketPath: string, ref?: ProcessRef): OwnedResource {
    return {
      kind: "process",
      key: `vmctl-vmm:${serviceId}`,
      data: ref ? { socket: socketPath, pid: ref.pid, startTime: ref.startTime } : { socket: socketPath },
    };
  },
  socket(path: string): OwnedResource {
    return { kind: "socket", key: path };
  },
  file(path: string): OwnedResource {
    return { kind: "file", key: path };
  },
  dir(path: string): OwnedResource {
    return { kind: "dir", key: path };
  },
  /** The service's TAP on its network's bridge (vm-network.ts), by interface name. */
  tap(name: string): OwnedResource {
    return { kind: TAP_KIND, key: name };
  },
};

export const TAP_KIND = "tap";

export interface RecordedVmm {
  readonly socket: string;
  readonly ref?: ProcessRef;
}

/** The VMM entry of a ledger, if start() got as far as intending it. */
export function recordedVmm(resources: readonly OwnedResource[], serviceId: string): RecordedVmm | undefined {
  const entry = resources.find((r) => r.kind === "process" && r.key === `vmctl-vmm:${serviceId}`);
  if (!entry) return undefined;
  const data = (entry.data ?? {}) as { socket?: unknown; pid?: unknown; startTime?: unknown };
  if (typeof data.socket !== "string") return undefined;
  const ref = typeof data.pid === "number" && typeof data.startTime === "string" ? { pid: data.pid, startTime: data.startTime } : undefined;
  return ref ? { socket: data.socket, ref } : { socket: data.socket };
}
