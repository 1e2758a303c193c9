import type { Command } from "commander";
import type { Capabilities } from "@vmctl/client";
import { withClient } from "../connection/with-client.js";
import { formatTable } from "../output/table.js";

const CAPABILITY_NAMES: readonly (keyof Capabilities)[] = ["exec", "pause", "network", "volumes", "logsFollow"];

export function registerTargets(program: Command): void {
  program
    .command("targets")
    .description("list targets with their plugin, status and capabilities")
    .option("--json", "print the targets as JSON")
    .action(async (options: { json?: boolean }, command: Command) => {
      const targets = await withClient(command, (client) => client.targets());
      if (options.json) {
        process.stdout.write(`${JSON.stringify(targets, null, 2)}\n`);
        return;
      }
      const rows = targets.map((t) => [
        t.name,
        t.plugin,
        t.status,
        CAPABILITY_NAMES.filter((c) => t.capabilities[c]).join(",") || "-",
      ]);
      process.stdout.write(`${formatTable(["TARGET", "PLUGIN", "STATUS", "CAPABILITIES"], rows)}\n`);
    });
}
