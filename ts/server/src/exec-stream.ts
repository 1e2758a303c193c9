// The Exec call: the client's first message starts the command; from then on its stdin,
// resizes and signals go to the command while the command's output goes back, read from
// the target only as fast as the client takes it (rpc-handlers writes at the client's
// pace). Whatever ends the call — the command's exit, the client going away, a bad input
// message, shutdown — the command does not outlive it.
import { ValidationError, VmctlError, type ExecProcess, type OrchestratorApi } from "@vmctl/core";
import { execInputFromProto, execOutputToProto, type ExecInputMessage, type vmctl } from "@vmctl/proto";

type ExecEngine = Pick<OrchestratorApi, "exec">;

export async function* serveExec(
  engine: ExecEngine,
  requests: AsyncIterable<vmctl.v1.ExecInput>,
  signal: AbortSignal,
): AsyncGenerator<vmctl.v1.IExecOutput> {
  const inputs = requests[Symbol.asyncIterator]();
  const first = await inputs.next();
  if (first.done) throw new ValidationError("start", "the stream ended before its start message");
  const start = execInputFromProto(first.value);
  if (start.kind !== "start") throw new ValidationError("start", `must be the first message (got ${start.kind})`);
  // The engine names the fields of its own API ("id", "args"); on the wire they are the start's.
  const process = await engine.exec(start.ref, start.request).catch((err: unknown) => {
    throw err instanceof ValidationError ? err.within("start") : err;
  });
  const cancel = (): void => process.cancel();
  signal.addEventListener("abort", cancel, { once: true });
  const forwarding = forwardInputs(inputs, process);
  let exited = false;
  try {
    yield execOutputToProto({ kind: "started" });
    for await (const output of process) yield execOutputToProto({ kind: "output", output });
    const failure = forwarding.failure();
    if (failure !== undefined) throw failure;
    const exit = await process.exited;
    exited = true;
    yield execOutputToProto({ kind: "exited", exit });
  } catch (err) {
    // An input that broke the call is the reason, not the cancellation it caused.
    throw forwarding.failure() ?? err;
  } finally {
    signal.removeEventListener("abort", cancel);
    if (!exited) process.cancel();
    forwarding.stop();
  }
}

interface Forwarding {
  /** The client's mistake that ended the call (the command was cancelled for it), if any. */
  failure(): VmctlError | undefined;
  /** Stops reading the client's messages. */
  stop(): void;
}

/**
 * Hands the client's messages to the command, one at a time (stdin with its backpressure).
 * A malformed message ends the call with INVALID_ARGUMENT. A message the command can no
 * longer take — stdin it closed, a signal after its exit — is dropped, as a pipe's reader
 * going away drops what is still written to it: the command's own exit is the answer.
 */
function forwardInputs(inputs: AsyncIterator<vmctl.v1.ExecInput>, process: ExecProcess): Forwarding {
  let failure: VmctlError | undefined;
  let stopped = false;
  const deliver = async (input: ExecInputMessage): Promise<void> => {
    switch (input.kind) {
      case "start":
        throw new ValidationError("start", "was sent twice: one command per call");
      case "stdin":
        return process.write(input.data);
      case "closeStdin":
        return process.closeStdin();
      case "resize":
        return process.resize(input.size);
      case "signal":
        return process.signal(input.name);
    }
  };
  void (async () => {
    try {
      for (;;) {
        const next = await inputs.next();
        if (next.done || stopped) return;
        await deliver(execInputFromProto(next.value)).catch((err: unknown) => {
          if (isClientMistake(err)) throw err;
        });
      }
    } catch (err) {
      if (stopped) return;
      failure = VmctlError.from(err, "exec input");
      process.cancel();
    }
  })();
  return {
    failure: () => failure,
    stop: () => {
      stopped = true;
      void inputs.return?.().catch(() => undefined);
    },
  };
}

function isClientMistake(err: unknown): boolean {
  return err instanceof ValidationError || (err instanceof VmctlError && err.code === "INVALID_ARGUMENT");
}
