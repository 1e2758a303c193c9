import { Command, CommanderError } from "commander";
import { registerDaemon } from "./commands/daemon.js";
import { registerDoctor } from "./commands/doctor.js";
import { registerCp } from "./commands/cp.js";
import { registerExec, registerPause } from "./commands/exec.js";
import { registerImages } from "./commands/images.js";
import { registerInspect } from "./commands/inspect.js";
import { registerKernel } from "./commands/kernel.js";
import { registerLogs } from "./commands/logs.js";
import { registerNetwork } from "./commands/network.js";
import { registerPs } from "./commands/ps.js";
import { registerRm } from "./commands/rm.js";
import { registerCreate, registerRun } from "./commands/run.js";
import { registerStart, registerStop } from "./commands/stop.js";
import { registerSystem } from "./commands/system.js";
import { registerTargets } from "./commands/targets.js";
import { addGlobalOptions } from "./connection/globals.js";
import { CliError } from "./errors.js";

const VERSION = "0.1.0";
/** Exit code for a command line that could not be understood, as shells and getopt use. */
const USAGE_ERROR = 2;

/** What a verb can hand back to `main` besides success or an error. */
interface RunContext {
  /** Arguments after the first "--" (the command of `vmctl run`). */
  trailing: readonly string[];
  exitCode: number;
}

/** Builds the `vmctl` command tree. Errors surface as exceptions, never process.exit. */
export function buildProgram(context: RunContext = { trailing: [], exitCode: 0 }): Command {
  const program = new Command("vmctl")
    .description("run services on microVMs, containers and cloud targets")
    .version(VERSION)
    .exitOverride()
    .configureOutput({
      // Commander's usage errors become the single line the entry point prints.
      outputError: () => {},
    });
  addGlobalOptions(program);
  const setExit = (code: number): void => {
    context.exitCode = code;
  };
  registerRun(program, () => context.trailing, setExit);
  registerCreate(program, () => context.trailing);
  registerPs(program);
  registerLogs(program);
  registerStart(program);
  registerStop(program);
  registerExec(program, () => context.trailing, setExit);
  registerPause(program);
  registerCp(program);
  registerRm(program);
  registerInspect(program);
  registerTargets(program);
  registerImages(program);
  registerNetwork(program);
  registerSystem(program);
  registerDaemon(program, setExit);
  registerDoctor(program);
  registerKernel(program);
  // Nested verbs too (kernel build|ls): usage errors end as one line through main().
  const quiet = (command: Command): void => {
    command.exitOverride().configureOutput({ outputError: () => {} });
    command.commands.forEach(quiet);
  };
  program.commands.forEach(quiet);
  return program;
}

/** Runs the CLI and returns the process exit code; errors are printed as one line. */
export async function main(argv: readonly string[]): Promise<number> {
  // Everything after the first "--" is the workload's command, never options of ours.
  const dashDash = argv.indexOf("--");
  const context: RunContext = {
    trailing: dashDash < 0 ? [] : argv.slice(dashDash + 1),
    exitCode: 0,
  };
  try {
    await buildProgram(context).parseAsync(dashDash < 0 ? [...argv] : argv.slice(0, dashDash), { from: "user" });
    return context.exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version also end through here, successfully.
      if (err.exitCode === 0) return 0;
      // A group without its verb (`vmctl kernel`): commander has printed the group's help to stderr.
      if (err.code === "commander.help") return USAGE_ERROR;
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
