import type { Command } from "commander";
import type { KvmInfo } from "@vmctl/native";
import { hostReport, type HostReport } from "../doctor/host-report.js";
import { formatTable } from "../output/table.js";

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
  if (kvm.pvm) {
    lines.push("  PVM host: no hardware virtualization, guest code is emulated (Linux guests cannot boot here)");
  }
  return lines.join("\n");
}

export function renderHostReport(report: HostReport): string {
  const rows = report.dependencies.map((d) => [
    d.target,
    d.name,
    d.present ? "present" : "MISSING",
    d.present ? [d.version, d.path].filter(Boolean).join("  ") : d.purpose,
  ]);
  return `${describeKvm(report.kvm)}\n\n${formatTable(["TARGET", "DEPENDENCY", "STATUS", "DETAIL"], rows)}`;
}

export function registerDoctor(program: Command): void {
  program
    .command("doctor")
    .description("report what this host offers: KVM and each target's dependencies")
    .option("--json", "print the report as JSON")
    .action(async (options: { json?: boolean }) => {
      const report = await hostReport();
      process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : `${renderHostReport(report)}\n`);
    });
}
