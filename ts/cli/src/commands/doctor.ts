import type { Command } from "commander";
import type { RequirementStatus } from "@vmctl/core/contract";
import type { KvmInfo } from "@vmctl/native";
import { globalsOf } from "../connection/globals.js";
import type { GuestKernelStatus } from "../doctor/guests.js";
import type { HostReport } from "../doctor/host-report.js";
import type { TargetRequirements } from "../doctor/target-requirements.js";
import { CliError } from "../errors.js";
import { loadHeavy } from "../load-heavy.js";
import { formatTable } from "../output/table.js";
import { collect } from "./parse.js";

const yesNo = (v: boolean | undefined) => (v ? "yes" : "no");

function describeKvm(kvm: KvmInfo): string {
  if (!kvm.available) {
    return `KVM: ${kvm.devicePath} unavailable: ${kvm.error ?? "unknown reason"}`;
  }
  const caps = kvm.capabilities;
  const lines = [
    `KVM: ${kvm.devicePath} available, API version ${kvm.apiVersion}`,
    `  capabilities: irqchip ${yesNo(caps?.irqchip)}, user memory ${yesNo(caps?.userMemory)}, ` +
      `ioeventfd ${yesNo(caps?.ioeventfd)}, irqfd ${yesNo(caps?.irqfd)}`,
    `  vCPUs per VM: max ${kvm.maxVcpus}, recommended ${kvm.recommendedVcpus}`,
  ];
  return lines.join("\n");
}

function describeKernel(kernel: GuestKernelStatus): string {
  if (!kernel.present) return `Guest kernel: missing (${kernel.cache}): ${kernel.problem}`;
  return `Guest kernel: ${kernel.release ?? "release unknown"}, ${kernel.path} (the default: microvm specs without a kernel boot it)`;
}

/** STATUS and DETAIL of one requirement: where it is, or why it is missing and the fix. */
function requirementCells(r: RequirementStatus): [string, string] {
  if (r.met) return ["ok", [r.version, r.found].filter(Boolean).join("  ")];
  const status = r.requirement.optional ? "missing (optional)" : "MISSING";
  return [status, `${r.requirement.why}: ${r.problem ?? "missing"}${r.fix ? `; fix: ${r.fix}` : ""}`];
}

function targetRows(t: TargetRequirements): string[][] {
  if (t.problem !== undefined) return [[t.target, "-", "UNKNOWN", `${t.plugin}: ${t.problem}`]];
  if (t.requirements.length === 0) return [[t.target, "-", "ok", t.declared ? "needs nothing on this host" : "declares no requirements (its init checks the host)"]];
  return t.requirements.map((r) => [t.target, r.name, ...requirementCells(r)]);
}

export function renderHostReport(report: HostReport): string {
  const guests = `Guests: ${report.guests.summary}\n${describeKernel(report.guestKernel)}`;
  const targets = formatTable(["TARGET", "REQUIREMENT", "STATUS", "DETAIL"], report.targets.flatMap(targetRows));
  const host = formatTable(["AREA", "REQUIREMENT", "STATUS", "DETAIL"], report.host.map((r) => [r.area, r.name, ...requirementCells(r)]));
  return `${describeKvm(report.kvm)}\n${guests}\n\nWhat each target declares it needs:\n${targets}\n\nWhat vmctl needs whatever the target:\n${host}`;
}

export function registerDoctor(program: Command): void {
  program
    .command("doctor")
    .description("report what this host offers: KVM, the guests it can run, the guest kernel and what each target needs")
    .option("--json", "print the report as JSON")
    .option("--plugin <name|path>", "check a plugin's targets too, as `vmctld --plugin` would load it (repeatable)", collect, [])
    .action(async (options: { json?: boolean; plugin: string[] }, command: Command) => {
      const { config } = globalsOf(command);
      const { hostReport } = await loadHeavy();
      let report: HostReport;
      try {
        report = await hostReport({ plugins: options.plugin, ...(config === undefined ? {} : { config }) });
      } catch (err) {
        // A config file the daemon would refuse: one line, as `vmctl daemon` says it.
        if ((err as Error).name === "ConfigError") throw new CliError((err as Error).message, 2);
        throw err;
      }
      process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : `${renderHostReport(report)}\n`);
    });
}
