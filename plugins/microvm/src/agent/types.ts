// Plain-data types of the guest agent's API (proto/agent/v1/agent.proto) as the host sees
// them: no protobuf classes and no grpc-js in what callers hold.

/** What the agent is and when it started, on the guest's own clock (CLOCK_BOOTTIME). */
export interface AgentInfo {
  readonly version: string;
  /** When the agent's main started: the kernel's hand-over time, in nanoseconds. */
  readonly agentStartBoottimeNs: number;
  /** When the workload was exec'd; 0 while there was none. */
  readonly workloadExecBoottimeNs: number;
  readonly hostname: string;
  /** True when the agent is the guest's init (mounts, root, power off). */
  readonly init: boolean;
  /** The agent's pid in its own PID namespace. */
  readonly pid: number;
}

/** A terminal's size in character cells. */
export interface WindowSize {
  readonly rows: number;
  readonly cols: number;
}

/** A command for the agent to run. */
export interface ExecStart {
  /** argv; args[0] is looked up in PATH unless it has a '/'. */
  readonly args: readonly string[];
  /** The image config's environment ("KEY=VALUE" each). */
  readonly imageEnv?: readonly string[];
  /** The caller's environment ("KEY=VALUE" each), merged over imageEnv. */
  readonly env?: readonly string[];
  /** Working directory; the user's home (or "/") when unset. */
  readonly cwd?: string;
  /** "uid", "uid:gid", "name" or "name:group"; root when unset. */
  readonly user?: string;
  /** Runs it on a new pseudo-terminal (its output is all "stdout"). */
  readonly tty?: boolean;
  /** The terminal's first size (with tty). */
  readonly window?: WindowSize;
  /** Keeps stdin open for `write` (otherwise the command reads /dev/null). */
  readonly stdin?: boolean;
  /** The VM's main command (one at a time; as init, the VM powers off when it ends). */
  readonly workload?: boolean;
  /** With workload: no power off when it ends. */
  readonly keepRunning?: boolean;
  /**
   * With workload: starts nothing, reads the running workload from here on (its pid, the
   * output not sent yet, its exit): a new orchestrator after a restart. The other fields
   * are ignored; FAILED_PRECONDITION when no workload runs.
   */
  readonly attach?: boolean;
}

/** A piece of a command's output, in the order the agent read it from that stream. */
export interface OutputChunk {
  readonly stream: "stdout" | "stderr";
  readonly data: Buffer;
}

interface ExitFacts {
  readonly coreDumped: boolean;
  /** The guest's OOM killer killed it. */
  readonly oom: boolean;
  /** Why the command did not run ("" when it ran): "vmctl-agent: nosuch: command not found". */
  readonly message: string;
}

/** How a command ended: an exit code (127 not found, 126 not permitted) or a signal's name. */
export type ExecExit = ExitFacts & ({ readonly code: number; readonly signal?: undefined } | { readonly signal: string; readonly code?: undefined });

/** What CopyIn unpacked. */
export interface CopyInResult {
  readonly entries: number;
  readonly bytes: number;
}

/** What Shutdown asks of the guest (outside a VM the agent only exits). */
export type ShutdownAction = "power-off" | "reboot";

/** Per-call options. */
export interface AgentCallOptions {
  /** Fails the call with DEADLINE_EXCEEDED after this long (default 30 s). */
  readonly timeoutMs?: number;
}
