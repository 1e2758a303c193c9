// vmctl exec: a further command inside a running service (targets claiming exec);
// its output is printed and its exit code becomes vmctl's.
import type { Command } from "commander";
import { eachRef, withClient } from "../connection/with-client.js";
import { CliError } from "../errors.js";
import { RUN_FAILED } from "./run.js";

export function registerExec(program: Command, trailing: () => readonly string[], setExit: (code: number) => void): void {
  program
    .command("exec")
    .description("run a command inside a running service and exit with its code")
    .argument("<service>", "service id or name")
    .argument("[command...]", "the command (after --)")
    .action(async (ref: string, positional: string[], _options: unknown, command: Command) => {
      const args = [...positional, ...trailing()];
      if (args.length === 0) throw new CliError("exec needs a command: vmctl exec SERVICE -- COMMAND...", 2);
      const result = await withClient(command, (client) => client.exec(ref, args));
      process.stdout.write(result.stdout);
      process.stderr.write(result.stderr);
      if (result.code === null) process.stderr.write(`vmctl: the command in ${ref} was killed by a signal\n`);
      setExit(result.code ?? RUN_FAILED);
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
