// The options every verb shares: where vmctld listens and where its state lives.
import type { Command } from "commander";
import { Option } from "commander";

import { DEFAULT_SOCKET, DEFAULT_STATE_DIR } from "@vmctl/core/contract";

export { DEFAULT_SOCKET, DEFAULT_STATE_DIR };

export interface Globals {
  readonly socket: string;
  readonly stateDir: string;
  /** The daemon's config file, handed to a daemon this CLI starts. */
  readonly config?: string;
}

export function addGlobalOptions(program: Command): void {
  program
    .addOption(new Option("--socket <path>", "vmctld's API socket").env("VMCTL_SOCKET").default(DEFAULT_SOCKET))
    .addOption(new Option("--state-dir <dir>", "vmctld's state directory").env("VMCTL_STATE_DIR").default(DEFAULT_STATE_DIR))
    .addOption(new Option("--config <file>", "config for a vmctld this command starts (targets' options)").env("VMCTL_CONFIG"));
}

export function globalsOf(command: Command): Globals {
  const opts = command.optsWithGlobals<{ socket: string; stateDir: string; config?: string }>();
  return { socket: opts.socket, stateDir: opts.stateDir, ...(opts.config ? { config: opts.config } : {}) };
}
