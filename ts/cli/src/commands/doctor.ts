import type { Command } from "commander";
import type { KvmInfo } from "@vmctl/native";
import type { GuestKernelStatus } from "../doctor/guests.js";
import type { HostReport } from "../doctor/host-report.js";
import { loadHeavy } from "../load-heavy.js";
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
  return lines.join("\n");
}

function describeKernel(kernel: GuestKernelStatus): string {
  if (!kernel.present) return `Guest kernel: missing (${kernel.cache}): ${kernel.problem}`;
  return `Guest kernel: ${kernel.release ?? "release unknown"}, ${kernel.path} (the default: microvm specs without a kernel boot it)`;
}

export function renderHostReport(report: HostReport): string {
  const rows = report.dependencies.map((d) => [
    d.target,
    d.name,
    d.present ? "present" : "MISSING",
    d.present ? [d.version, d.path].filter(Boolean).join("  ") : d.purpose,
  ]);
  const guests = `Guests: ${report.guests.summary}\n${describeKernel(report.guestKernel)}`;
  return `${describeKvm(report.kvm)}\n${guests}\n\n${formatTable(["TARGET", "DEPENDENCY", "STATUS", "DETAIL"], rows)}`;
}

export function registerDoctor(program: Command): void {
  program
    .command("doctor")
    .description("report what this host offers: KVM, the guests it can run, the guest kernel and each target's dependencies")
    .option("--json", "print the report as JSON")
    .action(async (options: { json?: boolean }) => {
      const { hostReport } = await loadHeavy();
      const report = await hostReport();
      process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : `${renderHostReport(report)}\n`);
    });
}
