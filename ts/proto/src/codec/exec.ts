// vmctl.v1's Exec stream ↔ the contract's exec types. The server decodes what a client
// sends (`execInputFromProto`, validating: a ValidationError names the field) and encodes
// the command's output; the client does the reverse, leniently.
import { ValidationError, type ExecExit, type ExecOutput, type ExecRequest, type TerminalSize } from "@vmctl/core/contract";
import type { vmctl } from "../gen/protos.js";

/** What a client's message asks for. */
export type ExecInputMessage =
  | { readonly kind: "start"; readonly ref: string; readonly request: ExecRequest }
  | { readonly kind: "stdin"; readonly data: Uint8Array }
  | { readonly kind: "closeStdin" }
  | { readonly kind: "resize"; readonly size: TerminalSize }
  | { readonly kind: "signal"; readonly name: string };

/** What the server answers, in order: started, output, exited. */
export type ExecOutputMessage =
  | { readonly kind: "started" }
  | { readonly kind: "output"; readonly output: ExecOutput }
  | { readonly kind: "exited"; readonly exit: ExecExit };

/** A terminal dimension's bounds (the kernel's winsize holds 16 bits). */
const MAX_TERMINAL_CELLS = 65_535;

function terminalSizeFromProto(size: vmctl.v1.ITerminalSize, field: string): TerminalSize {
  const rows = size.rows ?? 0;
  const cols = size.cols ?? 0;
  for (const [name, value] of [["rows", rows], ["cols", cols]] as const) {
    if (value < 1 || value > MAX_TERMINAL_CELLS) throw new ValidationError(`${field}.${name}`, `must be 1..${MAX_TERMINAL_CELLS}, got ${value}`);
  }
  return { rows, cols };
}

/** One client message, checked; the args themselves are the engine's to check. */
export function execInputFromProto(input: vmctl.v1.IExecInput): ExecInputMessage {
  if (input.start != null) {
    const start = input.start;
    const request: ExecRequest = {
      args: start.args ?? [],
      tty: start.tty === true,
      stdin: start.stdin === true,
      ...(start.size == null ? {} : { size: terminalSizeFromProto(start.size, "start.size") }),
    };
    return { kind: "start", ref: start.id ?? "", request };
  }
  if (input.stdin != null) return { kind: "stdin", data: input.stdin };
  if (input.closeStdin != null) return { kind: "closeStdin" };
  if (input.resize != null) return { kind: "resize", size: terminalSizeFromProto(input.resize, "resize") };
  if (input.signal != null) return { kind: "signal", name: input.signal };
  throw new ValidationError("input", "is empty: expected start, stdin, close_stdin, resize or signal");
}

export function execStartToProto(ref: string, request: ExecRequest): vmctl.v1.IExecInput {
  return {
    start: {
      id: ref,
      args: [...request.args],
      tty: request.tty === true,
      stdin: request.stdin === true,
      ...(request.size === undefined ? {} : { size: { rows: request.size.rows, cols: request.size.cols } }),
    },
  };
}

export function execOutputToProto(message: ExecOutputMessage): vmctl.v1.IExecOutput {
  switch (message.kind) {
    case "started":
      return { started: {} };
    case "output":
      return message.output.stream === "stdout" ? { stdout: message.output.data } : { stderr: message.output.data };
    case "exited":
      return { exited: { ...(message.exit.code === null ? {} : { code: message.exit.code }), signal: message.exit.signal ?? "" } };
  }
}

/** A server message; undefined for one this client does not know (a newer server's). */
export function execOutputFromProto(output: vmctl.v1.IExecOutput): ExecOutputMessage | undefined {
  if (output.started != null) return { kind: "started" };
  if (output.stdout != null) return { kind: "output", output: { stream: "stdout", data: output.stdout } };
  if (output.stderr != null) return { kind: "output", output: { stream: "stderr", data: output.stderr } };
  if (output.exited != null) {
    const e = output.exited;
    return { kind: "exited", exit: { code: e.code ?? null, ...(e.signal ? { signal: e.signal } : {}) } };
  }
  return undefined;
}
