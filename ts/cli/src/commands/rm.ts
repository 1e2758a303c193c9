import type { Command } from "commander";
import { eachRef, withClient } from "../connection/with-client.js";

export function registerRm(program: Command): void {
  program
    .command("rm")
    .description("delete services and everything they own")
    .argument("<service...>", "service ids or names")
    .option("-f, --force", "stop running services first")
    .action(async (refs: string[], options: { force?: boolean }, command: Command) => {
      await withClient(command, (client) =>
        eachRef(refs, async (ref) => {
          await client.delete(ref, { force: options.force === true });
          process.stdout.write(`${ref}\n`);
        }),
      );
    });
}
