// vmctl.v1's PruneSystemResponse ↔ the engine's SystemPruneReport, both ways: the server
// encodes what prune found, the client decodes it. An empty string on the wire is "none".
import type { SystemPruneReport } from "@vmctl/core/contract";
import type { vmctl } from "../gen/protos.js";

export function pruneReportToProto(report: SystemPruneReport): vmctl.v1.IPruneSystemResponse {
  return {
    dryRun: report.dryRun,
    things: report.things.map((t) => ({
      target: t.target,
      kind: t.kind,
      id: t.id,
      serviceId: t.serviceId ?? "",
      removed: t.removed,
      error: t.error ?? "",
    })),
    failures: report.failures.map((f) => ({ target: f.target, error: f.error })),
  };
}

export function pruneReportFromProto(r: vmctl.v1.IPruneSystemResponse): SystemPruneReport {
  return {
    dryRun: r.dryRun === true,
    things: (r.things ?? []).map((t) => ({
      target: t.target ?? "",
      kind: t.kind ?? "",
      id: t.id ?? "",
      ...(t.serviceId ? { serviceId: t.serviceId } : {}),
      removed: t.removed === true,
      ...(t.error ? { error: t.error } : {}),
    })),
    failures: (r.failures ?? []).map((f) => ({ target: f.target ?? "", error: f.error ?? "" })),
  };
}
