// exec() for the kit's tests of its exec check: the "process" target runs its services
// as host processes, so a further command is one more host process. Pipes only (no tty);
// the output is pulled from the pipes as the reader asks, so a slow reader slows it down.
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import type { Readable } from "node:stream";
import { VmctlError, type ExecExit, type ExecOutput, type ExecProcess, type ExecRequest, type ServiceController } from "@vmctl/core/contract";
import { brokenProcessTarget } from "./broken/delegate.js";

/**
 * Runs `request` on this host, through `sh -c 'exec "$@"'` so that a command that cannot
 * be run ends as the contract says: 127 (not found) or 126 (not executable), the shell's
 * reason on stderr. No terminal: a `tty` request is not honoured (fixtures say tty: false).
 */
export async function hostExec(request: ExecRequest): Promise<ExecProcess> {
  if (request.args.length === 0) throw new VmctlError("INVALID_ARGUMENT", "args: exec needs a command", { details: { field: "args" } });
  const child = spawn("/bin/sh", ["-c", 'exec "$@"', "sh", ...request.args], { stdio: [request.stdin ? "pipe" : "ignore", "pipe", "pipe"] });
  await once(child, "spawn");
  return new HostExecProcess(child);
}

class HostExecProcess implements ExecProcess {
  readonly exited: Promise<ExecExit>;
  readonly #child: ChildProcess;

  constructor(child: ChildProcess) {
    this.#child = child;
    // 'close' comes after both output pipes ended: the exit is never ahead of the output.
    this.exited = once(child, "close").then(([code, signal]) => (signal ? { code: null, signal: signal as string } : { code: code as number }));
  }

  [Symbol.asyncIterator](): AsyncIterator<ExecOutput> {
    return interleave({ stdout: this.#child.stdout!, stderr: this.#child.stderr! });
  }

  async write(data: Uint8Array): Promise<void> {
    const stdin = this.#stdin();
    if (!stdin.write(data)) await once(stdin, "drain");
  }

  async closeStdin(): Promise<void> {
    this.#stdin().end();
  }

  async resize(): Promise<void> {
    // No tty here: nothing to resize.
  }

  async signal(name: string): Promise<void> {
    this.#child.kill(name as NodeJS.Signals);
  }

  cancel(): void {
    if (this.#child.exitCode === null && this.#child.signalCode === null) this.#child.kill("SIGKILL");
    this.#child.stdout?.destroy();
    this.#child.stderr?.destroy();
  }

  #stdin() {
    const stdin = this.#child.stdin;
    if (!stdin) throw new VmctlError("FAILED_PRECONDITION", "the command was started without stdin");
    return stdin;
  }
}

/** Both pipes' chunks as each arrives, one read at a time per pipe. */
async function* interleave(pipes: Record<ExecOutput["stream"], Readable>): AsyncGenerator<ExecOutput> {
  const readers = new Map((Object.keys(pipes) as ExecOutput["stream"][]).map((stream) => [stream, pipes[stream][Symbol.asyncIterator]() as AsyncIterator<Buffer>]));
  // A pipe cancel() destroyed ends that stream (its pending read would otherwise reject unheard).
  const ended: IteratorResult<Buffer> = { done: true, value: undefined };
  const next = (stream: ExecOutput["stream"]) => readers.get(stream)!.next().then((result) => ({ stream, result }), () => ({ stream, result: ended }));
  const pending = new Map([...readers.keys()].map((stream) => [stream, next(stream)]));
  while (pending.size > 0) {
    const { stream, result } = await Promise.race(pending.values());
    if (result.done) {
      pending.delete(stream);
      continue;
    }
    pending.set(stream, next(stream));
    yield { stream, data: result.value };
  }
}

/** exec() of the service `inner`: refused (FAILED_PRECONDITION) unless it runs, then a host process. */
export function hostExecIn(inner: ServiceController): (request: ExecRequest) => Promise<ExecProcess> {
  return async (request) => {
    const { phase } = await inner.state();
    if (phase !== "running") throw new VmctlError("FAILED_PRECONDITION", `service ${inner.id} is ${phase}: exec needs it running`);
    return hostExec(request);
  };
}

/** The process target with an honest exec: a host process, stdin passed on. */
export const hostExecTarget = brokenProcessTarget({ capabilities: { exec: true }, controller: (inner) => ({ exec: hostExecIn(inner) }) });
