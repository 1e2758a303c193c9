import type { Command } from "commander";
import { globalsOf } from "../connection/globals.js";
import { CliError } from "../errors.js";
import { collect } from "./parse.js";

const LEVELS = ["debug", "info", "warn", "error"] as const;

export function registerDaemon(program: Command, setExit: (code: number) => void): void {
  program
    .command("daemon")
    .description("run vmctld in the foreground (until SIGTERM or Ctrl-C)")
    .option("--plugin <name|path>", "load a plugin package besides the built-in targets (repeatable)", collect, [])
    .option("--log-level <level>", "debug, info, warn or error", "info")
    .action(async (options: { plugin: string[]; logLevel: string }, command: Command) => {
      if (!(LEVELS as readonly string[]).includes(options.logLevel)) throw new CliError(`--log-level must be one of ${LEVELS.join(", ")}`, 2);
      const globals = globalsOf(command);
      // Loaded only here: the other verbs never load the engine.
      const { runDaemon } = await import("@vmctl/server");
      setExit(
        await runDaemon({
          socketPath: globals.socket,
          stateDir: globals.stateDir,
          plugins: options.plugin,
          logLevel: options.logLevel as (typeof LEVELS)[number],
        }),
      );
    });
}
