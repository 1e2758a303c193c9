// The options every verb shares: where vmctld listens and where its state lives.
import type { Command } from "commander";
import { Option } from "commander";

export const DEFAULT_SOCKET = "/run/vmctl/vmctld.sock";
export const DEFAULT_STATE_DIR = "/var/lib/vmctl";

export interface Globals {
  readonly socket: string;
  readonly stateDir: string;
}

export function addGlobalOptions(program: Command): void {
  program
    .addOption(new Option("--socket <path>", "vmctld's API socket").env("VMCTL_SOCKET").default(DEFAULT_SOCKET))
    .addOption(new Option("--state-dir <dir>", "vmctld's state directory").env("VMCTL_STATE_DIR").default(DEFAULT_STATE_DIR));
}

export function globalsOf(command: Command): Globals {
  const opts = command.optsWithGlobals<{ socket: string; stateDir: string }>();
  return { socket: opts.socket, stateDir: opts.stateDir };
}
