import type { Command } from "commander";
import type { ServiceRecord } from "@vmctl/client";
import { eachRef, withClient } from "../connection/with-client.js";
import { serviceJson } from "../output/format.js";

export function registerInspect(program: Command): void {
  program
    .command("inspect")
    .description("print services as a JSON array")
    .argument("<service...>", "service ids or names")
    .action(async (refs: string[], _options: unknown, command: Command) => {
      const found: ServiceRecord[] = [];
      try {
        await withClient(command, (client) => eachRef(refs, async (ref) => void found.push(await client.get(ref))));
      } finally {
        process.stdout.write(`${JSON.stringify(found.map(serviceJson), null, 2)}\n`);
      }
    });
}
