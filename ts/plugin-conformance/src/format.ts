// The report as text: one line per check, reasons indented under failures, a summary.
import type { ConformanceReport } from "./types.js";

const MARK = { pass: "PASS", fail: "FAIL", "skip-not-claimed": "SKIP" } as const;

export function formatReport(report: ConformanceReport): string {
  const caps = Object.entries(report.capabilities).map(([k, v]) => `${k}${v ? "" : " (no)"}`);
  const lines = [`vmctl-conformance: ${report.plugin}, target ${report.target}${caps.length ? ` [${caps.join(", ")}]` : ""}`];
  for (const c of report.checks) {
    lines.push(`  ${MARK[c.status]}  ${c.name} (${c.durationMs} ms)`);
    if (c.reason) lines.push(`        ${c.status === "skip-not-claimed" ? "not claimed: " : ""}${c.reason.replace(/^\w+ not claimed; /, "")}`);
  }
  const count = (s: string) => report.checks.filter((c) => c.status === s).length;
  lines.push(
    `${report.ok ? "ok" : "FAILED"}: ${count("pass")} passed, ${count("fail")} failed, ${count("skip-not-claimed")} not claimed, in ${(report.durationMs / 1000).toFixed(1)} s`,
  );
  return `${lines.join("\n")}\n`;
}
