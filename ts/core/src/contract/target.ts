import type {
  BindMount,
  Capabilities,
  ControllerRecord,
  ExitInfo,
  JsonValue,
  LogChunk,
  OwnedResource,
  ProgressSink,
  ServiceState,
} from "./types.js";
import type { ImageAccess } from "../images/types.js";
import type { OwnedThing } from "./owned.js";
import type { NetworkAttachment } from "../network/types.js";

/**
 * A durable ledger of what one service owns. `intend` is written to disk before it
 * returns, so a target calls it BEFORE making the resource: whatever happens next —
 * even `kill -9` of the orchestrator — the resource can be found and freed.
 */
export interface ResourceLedger {
  intend(resource: OwnedResource): void;
  /** The resource is gone (freed, or found never to have been made). */
  release(kind: string, key: string): void;
  list(): readonly OwnedResource[];
}

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** What the orchestrator gives a target for one service. */
export interface TargetContext {
  /** The service id. */
  readonly serviceId: string;
  /** A directory private to this service; the orchestrator removes it after destroy. */
  readonly serviceDir: string;
  /**
   * Labels to put on everything the target makes where the target supports labels
   * (containers, cloud tags), so a reaper can find what this orchestrator owns: OWNER_LABEL
   * (this installation) and SERVICE_LABEL. Put `serviceLabels(ownerLabels, serviceId)`,
   * and `encodeLabel` each where the medium takes only flat strings (owned.ts).
   */
  readonly ownerLabels: Readonly<Record<string, string>>;
  readonly resources: ResourceLedger;
  readonly log: Logger;
  /**
   * The orchestrator's image store, for this service: `use` pulls (or finds) an image and
   * pins it for as long as the service exists. Fails with FAILED_PRECONDITION on a vmctld
   * without an image engine.
   */
  readonly images: ImageAccess;
  /**
   * The service's place on a network, when it asked for one and the target claims
   * `capabilities.network` (absent otherwise). The orchestrator has leased the address,
   * made the bridge and will apply the host rules once `prepare` is done; the target makes
   * its host device (named `attachment.hostDevice`) and hands the guest its address,
   * gateway and DNS.
   */
  readonly network?: ServiceNetwork;
}

/** What a target gets of a service's network (TargetContext.network). */
export interface ServiceNetwork {
  readonly attachment: NetworkAttachment;
  /** A persistent TAP named `attachment.hostDevice`, on the bridge and up (a microVM's). Idempotent. */
  createTap(): Promise<void>;
  /** Deletes the service's host device (TAP or veth); false when it was not there. Idempotent. */
  deleteDevice(): Promise<boolean>;
}

export interface StopOptions {
  /** Grace period after the polite request (SIGTERM, Ctrl-Alt-Del...) before forcing. */
  readonly timeoutMs?: number;
}

export interface LogOptions {
  /** Keep streaming new output until the service exits. */
  readonly follow?: boolean;
}

/** A terminal's size in character cells. */
export interface TerminalSize {
  readonly rows: number;
  readonly cols: number;
}

/** A further command to run inside a running service. */
export interface ExecRequest {
  /** argv: args[0] is looked up in the service's PATH unless it has a '/'. */
  readonly args: readonly string[];
  /** Runs it on a new terminal: its output is all "stdout", and `resize` applies. */
  readonly tty?: boolean;
  /** Keeps its stdin open for `write`; without it the command reads an empty stdin. */
  readonly stdin?: boolean;
  /** The terminal's first size (with `tty`); the target's default when unset. */
  readonly size?: TerminalSize;
}

/** A piece of an exec'd command's output, in the order it was read from that stream. */
export interface ExecOutput {
  readonly stream: "stdout" | "stderr";
  readonly data: Uint8Array;
}

/** How an exec'd command ended. */
export interface ExecExit {
  /**
   * Its exit code; null when a signal killed it. A command that could not be run is 127
   * (not found) or 126 (not executable), as a shell reports it, with the reason on stderr.
   */
  readonly code: number | null;
  /** The signal's name when one killed it ("SIGKILL"). */
  readonly signal?: string;
}

/**
 * A command running inside a service. Its output is read by iterating, once, at the
 * reader's pace: a target must not buffer it whole (a slow reader slows the command
 * down). `exited` settles after the output has ended.
 */
export interface ExecProcess extends AsyncIterable<ExecOutput> {
  /** Rejects when the command's end could not be learned (the service went away, ...). */
  readonly exited: Promise<ExecExit>;
  /** Writes to its stdin (started with `stdin` or `tty`); resolves once accepted. */
  write(data: Uint8Array): Promise<void>;
  /** Ends its stdin (EOF). */
  closeStdin(): Promise<void>;
  /** The terminal's new size; ignored without `tty`. */
  resize(size: TerminalSize): Promise<void>;
  /** Sends the command a signal by name ("SIGINT", "SIGTERM", ...). */
  signal(name: string): Promise<void>;
  /**
   * Kills the command if it still runs and frees what the session holds. Idempotent. A
   * command it killed ends as killed by SIGKILL (`exited`: code null, signal "SIGKILL").
   */
  cancel(): void;
}

/** An exec'd command's whole output and exit, as `execToEnd` collects it. */
export interface ExecResult extends ExecExit {
  readonly stdout: Uint8Array;
  readonly stderr: Uint8Array;
}

/** One service on one target. Every method may be called again safely. */
export interface ServiceController {
  readonly id: string;
  /** Pulls, unpacks, builds what start needs. Idempotent; may take long. */
  prepare(progress?: ProgressSink): Promise<void>;
  /** Starts the workload. Idempotent: a running service stays as it is. */
  start(): Promise<void>;
  /** Asks the workload to stop, then forces it after `timeoutMs`. Resolves once it has exited. */
  stop(options?: StopOptions): Promise<void>;
  state(): Promise<ServiceState>;
  /** Output since the service started; with `follow`, then live output until exit. */
  logs(options?: LogOptions): AsyncIterable<LogChunk>;
  /** Resolves when the service has exited. */
  wait(): Promise<ExitInfo>;
  /** Frees every resource the service owns (and releases it from the ledger). Idempotent. */
  destroy(): Promise<void>;
  /** What the orchestrator persists so `adopt` can reattach after a restart. */
  record(): JsonValue;
  /**
   * Only when the factory claims `exec`. Resolves once the command runs (or could not be
   * run: then its exit says 127/126); rejects when the service cannot take it.
   */
  exec?(request: ExecRequest): Promise<ExecProcess>;
  /**
   * Only when the factory claims `copy`: a tar stream of `path` (a file or a directory,
   * absolute in the service), holding it under its own name, read at the caller's pace.
   * While the service runs, and after its exit until destroy (a VM: the paths given in
   * `RunInput.copyOut`). NOT_FOUND when there is no such path.
   */
  copyOut?(path: string): AsyncIterable<Uint8Array>;
  /** Only when the factory claims `pause`. */
  pause?(): Promise<void>;
  resume?(): Promise<void>;
}

/** The docker-like shorthand of `vmctl run [IMAGE] [-- COMMAND...]`, for a target to turn into its spec. */
export interface RunInput {
  /** What to run from: a rootfs directory, an image reference, a kernel... as the target defines. */
  readonly image?: string;
  readonly command: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  /**
   * Host directories (or files) the command sees at `destination` (`-v SRC:DST[:ro]`),
   * checked (absolute, existing). A container target binds them; a VM copies them in
   * before the command starts (its changes stay in the VM: `copyOut` brings results back).
   */
  readonly mounts: readonly BindMount[];
  /**
   * Paths in the service the caller will copy out (`copyOut()`) after the command ends
   * (`--copy-out`): a target whose files go with the command's end (a VM that powers off)
   * keeps these until the service is destroyed.
   */
  readonly copyOut: readonly string[];
  /** Spec fields given explicitly (`--spec`); they win over what image/command imply. */
  readonly spec: Readonly<Record<string, unknown>>;
}

/** A target: validates specs and makes controllers. Registered by a plugin. */
export interface ServiceFactory<Spec extends JsonValue = JsonValue> {
  /** The target name users choose: "microvm", "oci", ... */
  readonly target: string;
  readonly capabilities: Capabilities;
  /** Checks an untrusted spec; throws ValidationError naming the field path. */
  validate(spec: unknown): Spec;
  /**
   * Builds an (untrusted, still to be validated) spec from `vmctl run` shorthand.
   * Targets without it accept only an explicit spec.
   */
  specFromRun?(input: RunInput): unknown;
  /** Makes a controller for a new service. Must not start anything yet. */
  create(id: string, spec: Spec, ctx: TargetContext): Promise<ServiceController>;
  /**
   * Reattaches to a service after an orchestrator restart, from its record and the
   * resources in its ledger. Returns a controller for whatever remains — running or
   * dead (so it can be destroyed) — or undefined when nothing of it remains.
   */
  adopt(record: ControllerRecord, ctx: TargetContext): Promise<ServiceController | undefined>;
  /**
   * Reaping (`vmctl system prune`), optional. Everything the target holds that carries
   * `owner` as its OWNER_LABEL (ctx.ownerLabels), whatever service it belongs to and
   * whether or not that service still exists: containers, instances, processes — each
   * with its kind, the target's id for it and the SERVICE_LABEL it carries. Only what
   * carries the label: never something of another owner, nor something unlabelled.
   * The orchestrator keeps what belongs to one of its services and hands the rest to
   * `removeOwned`. Gone things (a terminated instance) are left out.
   */
  owned?(owner: string): Promise<readonly OwnedThing[]>;
  /**
   * Removes one thing `owned` listed (killing it first if it runs), and whatever the
   * target keeps for it alone (its socket, its address). Idempotent: a thing already
   * gone is not an error. Checks again that it still carries `thing.owner`.
   */
  removeOwned?(thing: OwnedThing): Promise<void>;
  /** Releases factory-wide resources (connections, caches) at orchestrator shutdown. */
  close?(): Promise<void>;
}
