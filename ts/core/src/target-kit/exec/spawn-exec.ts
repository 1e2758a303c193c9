// exec as a host process: a target that runs a command by a command line (`runc exec`,
// `lxc-attach`, or a command on the host itself) gets an ExecProcess from it here.
//
// Without a tty the child's stdout and stderr are pipes read at the reader's pace (see
// spawn-exec-output.ts), and its stdin a pipe only when asked for. With a tty the child
// runs on a new pseudo-terminal, as the session leader with that terminal as its
// controlling terminal (util-linux `setsid --ctty`): lxc-attach relays a terminal only
// when it can open /dev/tty, and the kernel then signals SIGWINCH on every resize to
// the runtime, which passes the new size on (runc exec -t and lxc-attach both do).
//
// A command in a container (`inContainer`) is the runtime's child in the container's
// PID namespace. Signals go to it directly: lxc-attach forwards none (a signal kills
// lxc-attach and leaves the command running), and no runtime can forward SIGKILL.
// Runtimes report death by signal N as status 128+N, which a command may also exit
// with: it reads as death by N only after the kit sent N. cancel() SIGKILLs the whole
// process tree under the runtime at once (the runtime dying first would hand the
// command to the container's init, out of reach).
import { spawn, type ChildProcess, type StdioOptions } from "node:child_process";
import { constants } from "node:os";
import type { Writable } from "node:stream";
import type { ExecExit, ExecOutput, ExecProcess, ExecRequest, TerminalSize } from "../../contract/target.js";
import { VmctlError } from "../../errors.js";
import { findBinary } from "../binaries.js";
import { signalOfStatus } from "../signals.js";
import { ExecOutputReader, OutputTail, type OutputSource } from "./spawn-exec-output.js";
import { commandsInContainer, processTree, signalIfAlive } from "./spawn-exec-processes.js";
import { DEFAULT_TERMINAL_SIZE, loadPtyAddon, Terminal } from "./spawn-exec-terminal.js";

/** How much of the runtime's stderr (its terminal output, with a tty) `mapExit` sees. */
export const EXEC_STDERR_TAIL_BYTES = 4096;
/** How long exec waits to see the command start in the container before it resolves anyway. */
const START_WAIT_MS = 10_000;
const START_POLL_MS = 5;

export interface SpawnExecOptions {
  /** The request, as the caller gave it (checked here too). */
  readonly request: ExecRequest;
  /**
   * The host command line that runs it: the runtime's (`runc --root R exec [-t] ID
   * ARGS...`, built for `request.tty`), or the command itself for one on the host.
   */
  readonly argv: readonly string[];
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /**
   * The runtime enters a container, with a PID namespace of its own, and starts the
   * command there as its child; it reports the command's exit status as its own, 128+N
   * for death by signal N; with a tty, it gives the command a terminal of its own and
   * relays ours (which is then raw). exec resolves once the command is seen to run.
   */
  readonly inContainer?: boolean;
  /** The exit as the target reports it (a runtime's own start failure as 127/126...). */
  readonly mapExit?: (exit: ExecExit, stderrTail: string) => ExecExit;
}

/** Runs `options.argv` for an exec request; resolves once it runs. */
export async function spawnExec(options: SpawnExecOptions): Promise<ExecProcess> {
  const request = options.request;
  checkRequest(request);
  const terminal = request.tty
    ? new Terminal(await loadPtyAddon(), request.size ?? DEFAULT_TERMINAL_SIZE, options.inContainer === true)
    : undefined;
  let child: ChildProcess;
  try {
    child = spawnChild(options, terminal);
  } catch (err) {
    terminal?.close();
    throw err;
  } finally {
    terminal?.releaseSlave();
  }
  try {
    await spawned(child, options.argv[0] ?? "");
  } catch (err) {
    terminal?.close();
    throw err;
  }
  const exec = new SpawnedExec(child, terminal, options);
  if (options.inContainer) await exec.started();
  return exec;
}

function checkRequest(request: ExecRequest): void {
  if (request.args.length === 0) throw new VmctlError("INVALID_ARGUMENT", "exec needs a command", { details: { field: "args" } });
  if (request.size !== undefined) checkSize(request.size);
}

function checkSize(size: TerminalSize): void {
  for (const n of [size.rows, size.cols]) {
    if (!Number.isInteger(n) || n < 1 || n > 65535) {
      throw new VmctlError("INVALID_ARGUMENT", `a terminal size is 1..65535 rows and columns, not ${size.rows}×${size.cols}`, {
        details: { field: "size" },
      });
    }
  }
}

function spawnChild(options: SpawnExecOptions, terminal: Terminal | undefined): ChildProcess {
  const [command, ...args] = options.argv;
  if (command === undefined) throw new VmctlError("INTERNAL", "spawnExec needs a command line");
  const common = { ...(options.cwd ? { cwd: options.cwd } : {}), ...(options.env ? { env: options.env } : {}) };
  if (terminal === undefined) {
    const stdio: StdioOptions = [options.request.stdin ? "pipe" : "ignore", "pipe", "pipe"];
    // A session of its own: a Ctrl-C at the orchestrator's terminal is not the command's.
    return spawn(command, args, { ...common, stdio, detached: true });
  }
  const setsid = findBinary("setsid");
  if (setsid === undefined) throw new VmctlError("FAILED_PRECONDITION", "exec with a tty needs setsid (util-linux), which is not installed here");
  // Not detached: setsid(1) forks when it is already a process group leader, and the
  // pid would then not be the runtime's.
  return spawn(setsid, ["--ctty", command, ...args], { ...common, stdio: [terminal.slave, terminal.slave, terminal.slave] });
}

function spawned(child: ChildProcess, name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    child.once("spawn", resolve);
    child.once("error", (err) => reject(VmctlError.from(err, `starting ${name}`)));
  });
}

class SpawnedExec implements ExecProcess {
  readonly exited: Promise<ExecExit>;
  readonly #child: ChildProcess;
  readonly #terminal: Terminal | undefined;
  readonly #stdin: Writable | null;
  readonly #options: SpawnExecOptions;
  readonly #output: ExecOutputReader;
  readonly #stderrTail = new OutputTail(EXEC_STDERR_TAIL_BYTES);
  /** Signals the kit sent the command: a runtime's 128+N after one of them is death by it. */
  readonly #sent = new Set<string>();
  #stdinError: Error | undefined;
  #running = true;

  constructor(child: ChildProcess, terminal: Terminal | undefined, options: SpawnExecOptions) {
    this.#child = child;
    this.#terminal = terminal;
    this.#options = options;
    this.#stdin = child.stdin;
    // A command that stops reading makes writes fail (EPIPE): write() reports it.
    this.#stdin?.on("error", (err) => (this.#stdinError = err));
    const sources: OutputSource[] = terminal
      ? [{ stream: "stdout", readable: terminal.output }]
      : [
          { stream: "stdout", readable: child.stdout! },
          { stream: "stderr", readable: child.stderr! },
        ];
    const tailOf: ExecOutput["stream"] = terminal ? "stdout" : "stderr";
    this.#output = new ExecOutputReader(sources, (chunk) => {
      if (chunk.stream === tailOf) this.#stderrTail.push(chunk.data);
    });
    const exit = new Promise<ExecExit>((resolve) => {
      child.once("exit", (code, signal) => {
        this.#running = false;
        resolve(signal ? { code: null, signal } : { code });
      });
    });
    this.exited = Promise.all([exit, this.#output.ended]).then(([e]) => {
      // Nothing reads the stdin of a command that has ended: free it (and the terminal).
      this.#stdin?.destroy();
      this.#terminal?.close();
      return this.#reported(e);
    });
  }

  [Symbol.asyncIterator](): AsyncIterator<ExecOutput> {
    return this.#output[Symbol.asyncIterator]();
  }

  /** Resolves once the runtime's command runs in the container, or the runtime has ended. */
  async started(): Promise<void> {
    const deadline = Date.now() + START_WAIT_MS;
    while (this.#running && Date.now() < deadline && commandsInContainer(this.#child.pid!).length === 0) {
      await new Promise((resolve) => setTimeout(resolve, START_POLL_MS));
    }
  }

  async write(data: Uint8Array): Promise<void> {
    if (this.#terminal) return this.#terminal.write(data);
    const stdin = this.#stdin;
    if (stdin === null) throw new VmctlError("FAILED_PRECONDITION", "the command was started without stdin");
    if (stdin.writableEnded || stdin.destroyed) throw this.#stdinClosed();
    await new Promise<void>((resolve, reject) => {
      // The callback comes once the pipe took the data: a command that reads slowly slows the writer.
      // (Node calls back without an error when the pipe was destroyed meanwhile: cancel.)
      stdin.write(data, (err) => (err || stdin.destroyed ? reject(this.#stdinClosed()) : resolve()));
    });
  }

  async closeStdin(): Promise<void> {
    // On a terminal, end of input is its EOF character (^D), as a user types it.
    if (this.#terminal) return this.#terminal.write(Uint8Array.of(4));
    const stdin = this.#stdin;
    if (stdin === null || stdin.writableFinished || stdin.destroyed) return;
    await new Promise<void>((resolve) => stdin.end(resolve));
  }

  async resize(size: TerminalSize): Promise<void> {
    checkSize(size);
    // The runtime is the terminal's foreground process: the kernel sends it SIGWINCH.
    this.#terminal?.resize(size);
  }

  async signal(name: string): Promise<void> {
    if (!Object.hasOwn(constants.signals, name)) {
      throw new VmctlError("INVALID_ARGUMENT", `${JSON.stringify(name)} is not a signal name here`, { details: { field: "signal" } });
    }
    if (!this.#running) return;
    const signal = name as NodeJS.Signals;
    this.#sent.add(signal);
    const commands = this.#options.inContainer ? commandsInContainer(this.#child.pid!) : [];
    // Not (yet, or no longer) in the container: the runtime itself (runc forwards it).
    for (const pid of commands.length > 0 ? commands : [this.#child.pid!]) signalIfAlive(pid, signal);
  }

  cancel(): void {
    if (this.#running) {
      // The whole tree at once: the runtime, the command and what the command started
      // (killing the runtime first would leave the command to the container's init).
      this.#sent.add("SIGKILL");
      for (const pid of processTree(this.#child.pid!)) signalIfAlive(pid, "SIGKILL");
    }
    this.#output.destroy();
    this.#stdin?.destroy();
    this.#terminal?.close();
  }

  #reported(exit: ExecExit): ExecExit {
    let reported = exit;
    const signal = exit.code === null ? undefined : signalOfStatus(exit.code);
    if (this.#options.inContainer && signal !== undefined && this.#sent.has(signal)) reported = { code: null, signal };
    return this.#options.mapExit ? this.#options.mapExit(reported, this.#stderrTail.text()) : reported;
  }

  #stdinClosed(): VmctlError {
    const why = this.#stdinError ? ` (${this.#stdinError.message})` : "";
    return new VmctlError("FAILED_PRECONDITION", `the command's stdin is closed${why}`);
  }
}
