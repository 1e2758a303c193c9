// Plain-data types shared by every target. Nothing here depends on a runtime.

/** JSON-serialisable values: what records and resource data may hold. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** What a target can do beyond the core lifecycle. A claimed capability must work;
 * an unclaimed one is refused by the orchestrator before the controller is called. */
export interface Capabilities {
  /** `exec()` runs a further command inside a running service. */
  readonly exec: boolean;
  /** `pause()` / `resume()` freeze and thaw a running service. */
  readonly pause: boolean;
  /** Services get network addresses (reported in `state().addresses`). */
  readonly network: boolean;
  /** Host paths can be mounted into services. */
  readonly volumes: boolean;
  /** `logs({ follow: true })` streams output as it is produced. */
  readonly logsFollow: boolean;
  /** `copyOut()` gives a service's files as a tar stream (unset: false). */
  readonly copy?: boolean;
}

/**
 * Lifecycle phase of one service, as its target sees it.
 * created → starting → running → stopping → exited; `exited` is final.
 */
export type Phase = "created" | "starting" | "running" | "paused" | "stopping" | "exited";

/** How a service ended. */
export interface ExitInfo {
  /** The workload's exit code; null when it was killed by a signal or never ran. */
  readonly code: number | null;
  /** Signal name when the workload was killed by one ("SIGKILL"). */
  readonly signal?: string;
  /**
   * Why it ended: "exited" (on its own), "stopped" (by stop()), "failed" (could not
   * start or run), "lost" (it vanished while no one was watching, e.g. across an
   * orchestrator crash, and its exit could not be learned), or a target-specific word
   * ("reset", "kvm-error", ...).
   */
  readonly reason: string;
  /** One readable sentence of detail, when there is more to say. */
  readonly detail?: string;
  readonly at: Date;
}

export interface ServiceState {
  readonly phase: Phase;
  /** Present once phase is "exited". */
  readonly exit?: ExitInfo;
  /** Host process id (VMM, container init) while running, when there is one. */
  readonly pid?: number;
  /** Target-side identity: container id, VM id, cloud instance id... */
  readonly instance?: string;
  /** Network addresses the service can be reached at. */
  readonly addresses?: readonly string[];
  readonly since: Date;
}

export type LogStream = "stdout" | "stderr" | "console";

export interface LogChunk {
  readonly stream: LogStream;
  readonly data: Uint8Array;
  readonly time: Date;
}

/** Progress of long work (pull, unpack, build), for progress bars. */
export interface ProgressEvent {
  /** What is being done: "pull", "unpack", "mkfs", ... */
  readonly phase: string;
  readonly message?: string;
  /** Units done and total, when known (bytes, layers, ...). */
  readonly current?: number;
  readonly total?: number;
  /**
   * The part of the work this event is about, when the work has parts: for an image
   * pull, the layer's digest (one progress bar per item). Absent for the work as a whole.
   */
  readonly item?: string;
}

export type ProgressSink = (event: ProgressEvent) => void;

/** Something a service owns outside the orchestrator's memory, recorded before it is made. */
export interface OwnedResource {
  /** Kind, e.g. "process", "socket", "file", "dir", "runc-container", "tap". */
  readonly kind: string;
  /** Identity within its kind: a path, a container id, a pid. */
  readonly key: string;
  /** Whatever the target needs to find or free it later. */
  readonly data?: JsonValue;
}

/** What the orchestrator persists for a controller, and hands back to `adopt`. */
export interface ControllerRecord {
  readonly id: string;
  readonly target: string;
  /** The validated, target-specific spec the service was created with. */
  readonly spec: JsonValue;
  /** The controller's own data from `record()`; absent if it never produced one. */
  readonly data?: JsonValue;
  /** Every resource recorded for the service and not yet released. */
  readonly resources: readonly OwnedResource[];
}

/** A host path bind-mounted into a container (or copied into a VM). */
export type BindMount = {
  /** Absolute host path; must exist. */
  source: string;
  /** Absolute path inside the service, not "/". */
  destination: string;
  /** Mount read-only (default false). */
  readOnly?: boolean;
};
