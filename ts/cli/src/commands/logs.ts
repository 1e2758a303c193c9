import type { Command } from "commander";
import { withClient } from "../connection/with-client.js";

export function registerLogs(program: Command): void {
  program
    .command("logs")
    .description("print a service's output (stdout to stdout, stderr to stderr)")
    .argument("<service>", "service id or name")
    .option("-f, --follow", "keep streaming until the service exits")
    .action(async (ref: string, options: { follow?: boolean }, command: Command) => {
      await withClient(command, async (client) => {
        for await (const chunk of client.logs(ref, { follow: options.follow === true })) {
          const out = chunk.stream === "stderr" ? process.stderr : process.stdout;
          if (!out.write(chunk.data)) await new Promise((resolve) => out.once("drain", resolve));
        }
      });
    });
}
