// vmctl ps: services as a table or JSON.
import type { Command } from "commander";
import type { ServiceFilter, ServicePhase, ServiceRecord } from "@vmctl/client";
import { withClient } from "../connection/with-client.js";
import { CliError } from "../errors.js";
import { age, exitSummary, serviceJson } from "../output/format.js";
import { formatTable } from "../output/table.js";
import { collect } from "./parse.js";

const PHASES: readonly ServicePhase[] = ["created", "waiting", "starting", "running", "paused", "stopping", "exited"];

/** `--filter label=k=v|label=k|target=x|phase=y` (repeatable; all must hold) as a ServiceFilter. */
export function parseFilters(items: readonly string[]): ServiceFilter {
  const labels: string[] = [];
  const phases: ServicePhase[] = [];
  let target: string | undefined;
  for (const item of items) {
    const eq = item.indexOf("=");
    const key = eq < 0 ? item : item.slice(0, eq);
    const value = eq < 0 ? "" : item.slice(eq + 1);
    if (value === "") throw new CliError(`--filter ${item}: expected label=..., target=... or phase=...`, 2);
    if (key === "label") labels.push(value);
    else if (key === "target") target = value;
    else if (key === "phase") {
      if (!PHASES.includes(value as ServicePhase)) throw new CliError(`--filter ${item}: phase must be one of ${PHASES.join(", ")}`, 2);
      phases.push(value as ServicePhase);
    } else throw new CliError(`--filter ${item}: unknown filter "${key}" (label, target, phase)`, 2);
  }
  return { labels, ...(target === undefined ? {} : { target }), phases };
}

/** The address a service is reached at: its network's lease, else what its target reports; "-" for none. */
export function addressOf(s: ServiceRecord): string {
  return s.network?.address ?? s.addresses[0] ?? "-";
}

const newestFirst = (a: ServiceRecord, b: ServiceRecord): number => b.createdAt.getTime() - a.createdAt.getTime();

export function registerPs(program: Command): void {
  program
    .command("ps")
    .description("list services (without -a: those that have not exited)")
    .option("-a, --all", "include exited services")
    .option("--json", "print the services as JSON")
    .option("--filter <filter>", "label=k=v, label=k, target=NAME or phase=PHASE (repeatable)", collect, [])
    .action(async (options: { all?: boolean; json?: boolean; filter: string[] }, command: Command) => {
      const filter = parseFilters(options.filter);
      const phases = filter.phases?.length || options.all ? filter.phases : PHASES.filter((p) => p !== "exited");
      const request = { ...filter, ...(phases ? { phases } : {}) };
      const services = await withClient(command, (client) => client.list(request));
      services.sort(newestFirst);
      if (options.json) {
        process.stdout.write(`${JSON.stringify(services.map(serviceJson), null, 2)}\n`);
        return;
      }
      const now = Date.now();
      const rows = services.map((s) => [s.id, s.name, s.target, s.status ? `${s.phase}*` : s.phase, addressOf(s), exitSummary(s.exit), age(s.createdAt, now)]);
      process.stdout.write(`${formatTable(["ID", "NAME", "TARGET", "PHASE", "ADDRESS", "EXIT", "AGE"], rows)}\n`);
    });
}
