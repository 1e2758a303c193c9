import type { Command } from "commander";
import { InvalidArgumentError } from "commander";
import { eachRef, withClient } from "../connection/with-client.js";

function seconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError("must be a number of seconds >= 0");
  return n;
}

/** `vmctl start`: services made by `vmctl create` (dependencies first); prints each name. */
export function registerStart(program: Command): void {
  program
    .command("start")
    .description("start created services (their dependencies first)")
    .argument("<service...>", "service ids or names")
    .action(async (refs: string[], _options: unknown, command: Command) => {
      await withClient(command, (client) =>
        eachRef(refs, async (ref) => {
          await client.start(ref);
          process.stdout.write(`${ref}\n`);
        }),
      );
    });
}

export function registerStop(program: Command): void {
  program
    .command("stop")
    .description("stop services: polite signal, forced after the timeout")
    .argument("<service...>", "service ids or names")
    .option("-t, --time <seconds>", "seconds to wait before forcing (default 10)", seconds)
    .action(async (refs: string[], options: { time?: number }, command: Command) => {
      await withClient(command, (client) =>
        eachRef(refs, async (ref) => {
          await client.stop(ref, options.time === undefined ? {} : { stopTimeoutMs: Math.round(options.time * 1000) });
          process.stdout.write(`${ref}\n`);
        }),
      );
    });
}
