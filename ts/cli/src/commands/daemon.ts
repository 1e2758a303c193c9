import type { Command } from "commander";
import { globalsOf } from "../connection/globals.js";
import { CliError } from "../errors.js";
import { importEsm } from "../import-esm.js";
import { collect } from "./parse.js";

const LEVELS = ["debug", "info", "warn", "error"] as const;

export function registerDaemon(program: Command, setExit: (code: number) => void): void {
  program
    .command("daemon")
    .description("run vmctld in the foreground (until SIGTERM or Ctrl-C)")
    .option("--plugin <name|path>", "load a plugin package besides the built-in targets (repeatable)", collect, [])
    .option("--log-level <level>", "debug, info, warn or error", "info")
    .option("--config <file>", 'JSON config: {"targets": {"<target>": {options}}} (default $VMCTL_CONFIG)')
    .action(async (options: { plugin: string[]; logLevel: string; config?: string }, command: Command) => {
      if (!(LEVELS as readonly string[]).includes(options.logLevel)) throw new CliError(`--log-level must be one of ${LEVELS.join(", ")}`, 2);
      const globals = globalsOf(command);
      // Loaded only here: the other verbs never load the engine.
      const { runDaemon, readConfig } = await importEsm<typeof import("@vmctl/server")>("@vmctl/server");
      const configPath = options.config ?? (process.env.VMCTL_CONFIG || undefined);
      let targetOptions = {};
      try {
        if (configPath !== undefined) targetOptions = readConfig(configPath).targets;
      } catch (err) {
        throw new CliError((err as Error).message, 2);
      }
      setExit(
        await runDaemon({
          targetOptions,
          socketPath: globals.socket,
          stateDir: globals.stateDir,
          plugins: options.plugin,
          logLevel: options.logLevel as (typeof LEVELS)[number],
        }),
      );
    });
}
