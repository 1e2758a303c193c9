// vmctl exec: a further command inside a running service (targets claiming exec), joined
// to this terminal: output streamed as it comes, stdin with -i, a terminal with -t; its
// exit code becomes vmctl's (128 + N when signal N killed it).
import type { Command } from "commander";
import { eachRef, withClient } from "../connection/with-client.js";
import { CliError } from "../errors.js";
import { exitStatus, joinTerminal, terminalSize } from "./exec-terminal.js";

interface ExecFlags {
  readonly interactive?: boolean;
  readonly tty?: boolean;
}

export function registerExec(program: Command, trailing: () => readonly string[], setExit: (code: number) => void): void {
  program
    .command("exec")
    .description("run a command inside a running service and exit with its code")
    .argument("<service>", "service id or name")
    .argument("[command...]", "the command (after --)")
    .option("-i, --interactive", "pass this stdin to the command (its end is the command's EOF)")
    .option("-t, --tty", "give the command a terminal (raw mode here, window size passed on)")
    .action(async (ref: string, positional: string[], flags: ExecFlags, command: Command) => {
      const args = [...positional, ...trailing()];
      if (args.length === 0) throw new CliError("exec needs a command: vmctl exec SERVICE -- COMMAND...", 2);
      const tty = flags.tty === true;
      const interactive = flags.interactive === true;
      const size = tty ? terminalSize() : undefined;
      const exit = await withClient(command, async (client) => {
        const exec = await client.exec(ref, { args, tty, stdin: interactive, ...(size ? { size } : {}) });
        return joinTerminal(exec, { interactive, tty });
      });
      setExit(exitStatus(exit));
    });
}

export function registerPause(program: Command): void {
  for (const [verb, description] of [
    ["pause", "freeze running services (targets that can pause)"],
    ["resume", "thaw paused services"],
  ] as const) {
    const cmd = program
      .command(verb)
      .description(description)
      .argument("<service...>", "service ids or names")
      .action(async (refs: string[], _options: unknown, command: Command) => {
        await withClient(command, (client) =>
          eachRef(refs, async (ref) => {
            await (verb === "pause" ? client.pause(ref) : client.resume(ref));
            process.stdout.write(`${ref}\n`);
          }),
        );
      });
    if (verb === "resume") cmd.alias("unpause");
  }
}
