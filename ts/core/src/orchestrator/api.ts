// The engine's interface: what the gRPC server (and tests) call. The server maps these
// types to proto/vmctl/v1 and VmctlError codes to gRPC statuses; nothing else.
import type { ExecProcess, ExecRequest } from "../contract/target.js";
import type { BindMount } from "../contract/types.js";
import type { Capabilities, ExitInfo, JsonValue, LogChunk, Phase, ProgressSink } from "../contract/types.js";
import type { EgressPolicy, NetworkDefinition, PublishedPort } from "../network/types.js";

/** A service's phase as the orchestrator sees it: the target's phases plus "waiting" (for dependencies). */
export type ServicePhase = Phase | "waiting";

export type ReadinessCheck =
  | { readonly kind: "tcp"; readonly host?: string; readonly port: number }
  | { readonly kind: "http"; readonly url: string; readonly expectStatus?: number }
  | { readonly kind: "command"; readonly args: readonly string[] };

export interface Readiness {
  readonly check: ReadinessCheck;
  /** Default 200. */
  readonly intervalMs?: number;
  /** Default 60000. */
  readonly timeoutMs?: number;
}

export interface CreateServiceInput {
  /** Generated when omitted. */
  readonly name?: string;
  readonly target: string;
  /** Untrusted; validated by the target. */
  readonly spec: unknown;
  readonly labels?: Readonly<Record<string, string>>;
  /** Ids or names of services that must be ready before this one starts. */
  readonly dependsOn?: readonly string[];
  readonly readiness?: Readiness;
  /** Start right after create. */
  readonly start?: boolean;
  /**
   * The `vmctl run IMAGE -- COMMAND...` shorthand: the target's `specFromRun` turns it
   * (with `spec`, whose explicit fields win) into the spec before validation. A target
   * without `specFromRun` refuses it (INVALID_ARGUMENT on "spec": it needs an explicit spec).
   */
  readonly run?: RunShorthand;
  /**
   * Idempotency key (1-64 of [A-Za-z0-9_.:-]): a create sent again with the same key
   * returns the service the first one made (if it was acknowledged) instead of a
   * second one; the same key with a different request is ALREADY_EXISTS.
   */
  readonly requestId?: string;
  /**
   * "none" (the default), "default" (the implicit network, made on first use) or a
   * network's name. Only on targets claiming `capabilities.network`.
   */
  readonly network?: string;
  /** Host ports forwarded to the service (`-p 8080:80`); only with a network. */
  readonly ports?: readonly PublishedPort[];
  /** Where the service may send traffic; absent: its network's policy. Only with a network. */
  readonly networkPolicy?: EgressPolicy;
}

/** What `vmctl run` says besides an explicit spec. */
export interface RunShorthand {
  /** A rootfs directory, an image reference, a kernel... as the target defines. */
  readonly image?: string;
  readonly command?: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  /** Host paths the command sees (`-v SRC:DST[:ro]`): bound by containers, copied into VMs. */
  readonly mounts?: readonly BindMount[];
  /** Paths the caller will copy out after the command ends (`--copy-out`). */
  readonly copyOut?: readonly string[];
}

/** A service as stored and reported. */
export interface ServiceRecord {
  readonly id: string;
  readonly name: string;
  readonly target: string;
  readonly labels: Readonly<Record<string, string>>;
  /** The validated spec. */
  readonly spec: JsonValue;
  readonly dependsOn: readonly string[];
  readonly readiness?: Readiness;
  readonly phase: ServicePhase;
  readonly exit?: ExitInfo;
  readonly pid?: number;
  readonly instance?: string;
  readonly addresses: readonly string[];
  readonly ready: boolean;
  /**
   * Why the orchestrator cannot vouch for `phase`, when it cannot: e.g. "target oci
   * unavailable: failed: runc not found" after a restart. Absent when all is well.
   */
  readonly status?: string;
  /** Its place on a network; absent for a service without one. */
  readonly network?: ServiceNetworkInfo;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** A service's network, address and rules, as reported. */
export interface ServiceNetworkInfo {
  readonly network: string;
  readonly address: string;
  readonly prefixLength: number;
  readonly gateway: string;
  readonly dns: readonly string[];
  readonly mac: string;
  /** The host-side device (TAP or veth). */
  readonly hostDevice: string;
  readonly ports: readonly PublishedPort[];
  /** The policy in force: the service's own, else its network's. */
  readonly policy: EgressPolicy;
  /** True when `policy` is the service's own. */
  readonly ownPolicy: boolean;
}

/** `CreateNetwork`: a named network. */
export interface CreateNetworkInput {
  readonly name: string;
  /** A CIDR ("10.88.1.0/24", /16 to /29); absent: the next free one of the daemon's pool. */
  readonly subnet?: string;
  /** Resolvers for the guests; absent or empty: the host's non-loopback ones (/etc/resolv.conf). */
  readonly dns?: readonly string[];
  /** Egress of its services that set none; absent: allow-all. */
  readonly policy?: EgressPolicy;
}

/** A network as reported. */
export interface NetworkRecord extends NetworkDefinition {
  /** Ids of the services on it. */
  readonly services: readonly string[];
  /** The subnet's prefix length. */
  readonly prefixLength: number;
  readonly createdAt: Date;
}

export interface ServiceFilter {
  /** "key=value" or "key"; all must match. */
  readonly labels?: readonly string[];
  readonly target?: string;
  readonly phases?: readonly ServicePhase[];
}

export interface ServiceEvent {
  readonly kind: "snapshot" | "created" | "updated" | "deleted";
  readonly service: ServiceRecord;
  readonly at: Date;
}

export interface TargetInfo {
  readonly name: string;
  /** Package name or path of the plugin that registered it. */
  readonly plugin: string;
  readonly capabilities: Capabilities;
  /** "ready", or "skipped: <why>" / "failed: <why>". */
  readonly status: string;
}

/** A reference to a service: its id or its name. */
export type ServiceRef = string;

export interface OrchestratorApi {
  /** `options.progress` hears the target's prepare (image pulls, unpacking...). */
  create(input: CreateServiceInput, options?: { progress?: ProgressSink }): Promise<ServiceRecord>;
  start(ref: ServiceRef): Promise<ServiceRecord>;
  /** `signal` ends the call's wait; the stop itself goes on (a later stop may hurry it). */
  stop(ref: ServiceRef, options?: { timeoutMs?: number; signal?: AbortSignal }): Promise<ServiceRecord>;
  delete(ref: ServiceRef, options?: { force?: boolean }): Promise<void>;
  get(ref: ServiceRef): ServiceRecord;
  list(filter?: ServiceFilter): ServiceRecord[];
  /** Current state of the matching services ("snapshot" events), then every change; ends when `signal` aborts. */
  watch(refs: readonly ServiceRef[], signal: AbortSignal): AsyncIterable<ServiceEvent>;
  logs(ref: ServiceRef, options?: { follow?: boolean; signal?: AbortSignal }): AsyncIterable<LogChunk>;
  wait(ref: ServiceRef, signal?: AbortSignal): Promise<ExitInfo>;
  /** Freezes a running service (targets claiming `pause`). */
  pause(ref: ServiceRef): Promise<ServiceRecord>;
  /** Thaws a paused service. */
  resume(ref: ServiceRef): Promise<ServiceRecord>;
  /**
   * Runs a further command inside a running service (targets claiming `exec`): its output
   * streams at the caller's pace; stdin, resizes and signals go to it while it runs.
   */
  exec(ref: ServiceRef, request: ExecRequest): Promise<ExecProcess>;
  /**
   * A tar stream of `path` (a file or a directory, under its own name) in a service whose
   * target claims `copy`: while it runs and after its exit, until it is deleted.
   */
  copyOut(ref: ServiceRef, path: string): AsyncIterable<Uint8Array>;
  targets(): TargetInfo[];
  /** A named network: its bridge, subnet and NAT made on the host. */
  createNetwork(input: CreateNetworkInput): Promise<NetworkRecord>;
  listNetworks(): NetworkRecord[];
  getNetwork(name: string): NetworkRecord;
  /** FAILED_PRECONDITION while services are on it. */
  deleteNetwork(name: string): Promise<void>;
  /** Detaches from every service (they keep running) and closes the state store. */
  close(): Promise<void>;
}
