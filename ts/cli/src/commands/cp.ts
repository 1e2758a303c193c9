// vmctl cp SERVICE:PATH DEST: a file or a directory out of a service (running, or exited
// and not yet removed) onto this host, by cp(1)'s rule (copy-out.ts).
import type { Command } from "commander";
import { withClient } from "../connection/with-client.js";
import { CliError } from "../errors.js";
import { copyOutTo } from "./copy-out.js";

export function registerCp(program: Command): void {
  program
    .command("cp")
    .description("copy a file or a directory out of a service (targets with copy)")
    .argument("<service:path>", "the service and an absolute path in it")
    .argument("<dest>", "where it goes on this host")
    .action(async (source: string, dest: string, _options: unknown, command: Command) => {
      const colon = source.indexOf(":");
      const ref = source.slice(0, colon);
      const path = source.slice(colon + 1);
      if (colon <= 0 || !path.startsWith("/")) throw new CliError(`cp ${JSON.stringify(source)}: expected SERVICE:/PATH`, 2);
      const landed = await withClient(command, (client) => copyOutTo(client, ref, path, dest));
      process.stdout.write(`${landed}\n`);
    });
}
