// `vmctl system prune [--dry-run] [--json]`: removes what the targets hold under this
// vmctld's owner label that belongs to none of its services (PruneSystem). One line per
// thing on stdout; what could not be removed, and targets that could not be asked, on
// stderr, and the exit code says so (1).
import type { Command } from "commander";
import type { PrunedThing, SystemPruneReport } from "@vmctl/core/contract";
import { withClient } from "../connection/with-client.js";
import { CliError } from "../errors.js";

/** The line of one thing: "removed docker docker-container 3f2a… (service 0123456789abcdef)". */
export function prunedLine(thing: PrunedThing, dryRun: boolean): string {
  const verb = dryRun ? "would remove" : thing.removed ? "removed" : "not removed";
  const service = thing.serviceId === undefined ? "" : ` (service ${thing.serviceId})`;
  return `${verb} ${thing.target} ${thing.kind} ${thing.id}${service}${thing.error === undefined ? "" : `: ${thing.error}`}`;
}

/** How many things could not be removed, and targets not asked: the exit code is 1 when any. */
export function pruneFailures(report: SystemPruneReport): number {
  return report.things.filter((t) => !report.dryRun && !t.removed).length + report.failures.length;
}

async function prune(options: { dryRun?: boolean; json?: boolean }, command: Command): Promise<void> {
  const dryRun = options.dryRun === true;
  const report = await withClient(command, async (client) => client.pruneSystem({ dryRun }));
  if (options.json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } else {
    for (const thing of report.things) {
      const failed = !dryRun && !thing.removed;
      (failed ? process.stderr : process.stdout).write(`${failed ? "vmctl: " : ""}${prunedLine(thing, dryRun)}\n`);
    }
    for (const f of report.failures) process.stderr.write(`vmctl: target ${f.target} could not list what it holds: ${f.error}\n`);
  }
  const failures = pruneFailures(report);
  if (failures > 0) throw new CliError(`system prune: ${failures} ${failures === 1 ? "failure" : "failures"}`, 1);
}

export function registerSystem(program: Command): void {
  const system = program.command("system").description("manage what vmctld owns on its targets (prune)");
  system
    .command("prune")
    .description("remove what the targets hold under this vmctld's owner label but no service of it owns (containers, instances, VMM processes)")
    .option("--dry-run", "only say what would be removed")
    .option("--json", "print the report as JSON")
    .action(prune);
}
