// Joins an exec'd command to this terminal (or these pipes): its output to our stdout and
// stderr as it arrives (waiting when they are full, so the command waits too), our stdin
// to it with -i, our window size with -t, and our signals. Without a tty, the first
// Ctrl-C (SIGINT), SIGTERM or SIGHUP is passed to the command, which decides; a second
// one ends it. With a tty in raw mode, Ctrl-C is a byte the remote terminal turns into
// SIGINT, as it would locally.
import { once } from "node:events";
import { constants } from "node:os";
import type { Writable } from "node:stream";
import type { ExecExit, ExecProcess } from "@vmctl/client";

const FORWARDED_SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

export interface TerminalOptions {
  /** Forward our stdin (-i). */
  readonly interactive: boolean;
  /** The command has a terminal (-t): raw mode here, resizes there. */
  readonly tty: boolean;
}

/** Our terminal's size, when stdout is one. */
export function terminalSize(): { rows: number; cols: number } | undefined {
  const out = process.stdout;
  return out.isTTY && out.rows > 0 && out.columns > 0 ? { rows: out.rows, cols: out.columns } : undefined;
}

/** Runs `exec` joined to this process's stdio until its exit; restores the terminal whatever happens. */
export async function joinTerminal(exec: ExecProcess, options: TerminalOptions): Promise<ExecExit> {
  const undo: (() => void)[] = [];
  try {
    if (options.tty && process.stdin.isTTY) {
      process.stdin.setRawMode(true);
      undo.push(() => process.stdin.setRawMode(false));
    }
    if (options.tty && process.stdout.isTTY) {
      const onResize = (): void => {
        const size = terminalSize();
        if (size) exec.resize(size).catch(() => undefined);
      };
      process.stdout.on("resize", onResize);
      undo.push(() => process.stdout.off("resize", onResize));
    }
    undo.push(forwardSignals(exec));
    if (options.interactive) undo.push(forwardStdin(exec));
    for await (const chunk of exec) await writeAll(chunk.stream === "stdout" ? process.stdout : process.stderr, chunk.data);
    return await exec.exited;
  } finally {
    for (const step of undo.reverse()) step();
  }
}

/** How a shell reports the command's end: its code, or 128 + the signal's number. */
export function exitStatus(exit: ExecExit): number {
  if (exit.code !== null) return exit.code;
  const number = exit.signal === undefined ? undefined : (constants.signals as Record<string, number>)[exit.signal];
  return 128 + (number ?? 0);
}

async function writeAll(stream: Writable, data: Uint8Array): Promise<void> {
  if (!stream.write(data)) await once(stream, "drain");
}

/** Our signals to the command; a second one ends it. Returns the undo. */
function forwardSignals(exec: ExecProcess): () => void {
  let received = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    received += 1;
    if (received > 1) exec.cancel();
    else exec.signal(signal).catch(() => exec.cancel());
  };
  for (const signal of FORWARDED_SIGNALS) process.on(signal, onSignal);
  return () => {
    for (const signal of FORWARDED_SIGNALS) process.off(signal, onSignal);
  };
}

/** Our stdin to the command, a chunk at a time (paused while the command is not taking it); its end is the command's EOF. */
function forwardStdin(exec: ExecProcess): () => void {
  const input = process.stdin;
  const onData = (data: Buffer): void => {
    input.pause();
    exec.write(data).then(
      () => input.resume(),
      () => undefined, // the command closed its stdin or ended: nothing more to send
    );
  };
  const onEnd = (): void => {
    exec.closeStdin().catch(() => undefined);
  };
  input.on("data", onData);
  input.once("end", onEnd);
  input.resume();
  return () => {
    input.off("data", onData);
    input.off("end", onEnd);
    input.pause();
    // Our stdin must not keep the process alive after the command has ended.
    input.unref?.();
  };
}
