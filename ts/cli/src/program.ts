import { Command, CommanderError } from "commander";
import { registerDoctor } from "./commands/doctor.js";
import { CliError } from "./errors.js";

const VERSION = "0.1.0";
/** Exit code for a command line that could not be understood, as shells and getopt use. */
const USAGE_ERROR = 2;

/** Builds the `vmctl` command tree. Errors surface as exceptions, never process.exit. */
export function buildProgram(): Command {
  const program = new Command("vmctl")
    .description("run services on microVMs, containers and cloud targets")
    .version(VERSION)
    .exitOverride()
    .configureOutput({
      // Commander's usage errors become the single line the entry point prints.
      outputError: () => {},
    });
  registerDoctor(program);
  for (const command of program.commands) command.exitOverride().configureOutput({ outputError: () => {} });
  return program;
}

/** Runs the CLI and returns the process exit code; errors are printed as one line. */
export async function main(argv: readonly string[]): Promise<number> {
  try {
    await buildProgram().parseAsync([...argv], { from: "user" });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version also end through here, successfully.
      if (err.exitCode === 0) return 0;
      process.stderr.write(`vmctl: ${err.message.replace(/^error: /, "")} (see 'vmctl --help')\n`);
      return USAGE_ERROR;
    }
    if (err instanceof CliError) {
      process.stderr.write(`vmctl: ${err.message}\n`);
      return err.exitCode;
    }
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`vmctl: internal error: ${message}\n`);
    return 70; // EX_SOFTWARE
  }
}
