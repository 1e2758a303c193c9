// The contract's ExecProcess over one guest agent exec session. The session is already
// pull-based (the agent sends more only as the reader asks), so output passes straight
// through; what this adds is the contract's reading of the agent's exit: a command that
// could not be run (127 not found, 126 not executable) says why on its output.
import type { ExecExit, ExecOutput, ExecProcess, ExecRequest, TerminalSize } from "@vmctl/core/contract";
import type { AgentConnection, ExecExit as AgentExit, ExecSession, ExecStart } from "./agent/index.js";
import type { VmWorkload } from "./vm-config.js";
import { fullSignalName } from "./workload-exit.js";

/** Starts `request` through the agent, in the workload's env, cwd and user. */
export async function startExec(agent: AgentConnection, request: ExecRequest, workload: VmWorkload): Promise<AgentExecProcess> {
  return new AgentExecProcess(await agent.exec(execStartFor(request, workload)), request.tty ?? false);
}

/** The agent's start of an exec: the request's command and terminal, the workload's env, cwd and user. */
export function execStartFor(request: ExecRequest, workload: VmWorkload): ExecStart {
  return {
    args: request.args,
    imageEnv: workload.imageEnv,
    env: workload.env,
    ...(workload.cwd === undefined ? {} : { cwd: workload.cwd }),
    ...(workload.user === undefined ? {} : { user: workload.user }),
    tty: request.tty ?? false,
    stdin: request.stdin ?? false,
    ...(request.size === undefined ? {} : { window: request.size }),
  };
}

export class AgentExecProcess implements ExecProcess {
  readonly exited: Promise<ExecExit>;

  readonly #session: ExecSession;
  /** Where the agent reports a command that could not run: the terminal with a tty. */
  readonly #reportStream: ExecOutput["stream"];
  #settle!: { resolve: (exit: ExecExit) => void; reject: (err: unknown) => void };
  #cancelled = false;

  constructor(session: ExecSession, tty: boolean) {
    this.#session = session;
    this.#reportStream = tty ? "stdout" : "stderr";
    this.exited = new Promise<ExecExit>((resolve, reject) => (this.#settle = { resolve, reject }));
    // Whoever awaits `exited` sees the failure; nobody awaiting it is not a crash.
    this.exited.catch(() => undefined);
    // A failure (the connection went, cancel()) needs no reader to be told.
    session.exited.catch((err: unknown) => this.#settle.reject(err));
  }

  /** The output as the agent sends it; then, when the command could not run and said nothing, the agent's reason. */
  async *[Symbol.asyncIterator](): AsyncGenerator<ExecOutput> {
    let reported = false;
    try {
      for await (const chunk of this.#session) {
        reported ||= chunk.stream === this.#reportStream && chunk.data.byteLength > 0;
        yield chunk;
      }
      if (this.#cancelled) return;
      const exit = await this.#session.exited;
      // An agent reports the reason on the output itself; this keeps the rule when it did not.
      if (exit.message !== "" && !reported) yield { stream: this.#reportStream, data: Buffer.from(`${exit.message}\n`) };
    } finally {
      // Settled only now, so `exited` never comes before the output's end.
      this.#session.exited.then((exit) => this.#settle.resolve(contractExit(exit)), (err: unknown) => this.#settle.reject(err));
    }
  }

  write(data: Uint8Array): Promise<void> {
    return this.#session.write(data);
  }

  closeStdin(): Promise<void> {
    return this.#session.closeStdin();
  }

  resize(size: TerminalSize): Promise<void> {
    return this.#session.resize(size.rows, size.cols);
  }

  signal(name: string): Promise<void> {
    return this.#session.signal(name);
  }

  cancel(): void {
    if (this.#cancelled) return;
    this.#cancelled = true;
    this.#session.cancel();
    // The contract's end of a cancelled command: killed (the agent kills its process group
    // as the call ends). An exit already read has settled `exited` and stays.
    this.#settle.resolve({ code: null, signal: "SIGKILL" });
  }
}

/** The agent's exit as the contract's: its code, or the signal that killed it (null code). */
export function contractExit(exit: AgentExit): ExecExit {
  if (exit.signal !== undefined) return { code: null, signal: fullSignalName(exit.signal) };
  return { code: exit.code };
}
