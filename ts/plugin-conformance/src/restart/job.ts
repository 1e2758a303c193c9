// What the kit hands its first-orchestrator process (a job file) and what that process
// reports (JSON lines on stdout), and the ledger file it leaves.
import { readFileSync } from "node:fs";
import type { JsonValue, OwnedResource } from "@vmctl/core/contract";

export interface FirstOrchestratorJob {
  readonly pluginPath: string;
  readonly target: string;
  readonly stateDir: string;
  readonly targetOptions: Readonly<Record<string, unknown>>;
  readonly serviceId: string;
  readonly serviceDir: string;
  readonly ownerLabels: Readonly<Record<string, string>>;
  readonly ledgerFile: string;
  readonly spec: unknown;
  readonly mode: "running" | "exited" | "interrupted";
  /** "running": the line the output must show before the service counts as running. */
  readonly line?: string;
  readonly stepMs: number;
  /** An image store of the child's own to open (the harness has one); absent: no images. */
  readonly imageStore?: string;
}

/** One line of the child's stdout. */
export type FirstOrchestratorEvent =
  | { readonly event: "created"; readonly spec: JsonValue; readonly record: JsonValue }
  | { readonly event: "killing-at-intend"; readonly resource: OwnedResource }
  | { readonly event: "started"; readonly record: JsonValue }
  | { readonly event: "ready"; readonly record: JsonValue }
  | { readonly event: "error"; readonly step: string; readonly error: string };

/** The ledger a FileLedger left: every intend not released since, in order. */
export function readLedgerFile(file: string): OwnedResource[] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return [];
  }
  const entries = new Map<string, OwnedResource>();
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const op = JSON.parse(line) as { op: "intend"; resource: OwnedResource } | { op: "release"; kind: string; key: string };
    if (op.op === "intend") entries.set(`${op.resource.kind}\0${op.resource.key}`, op.resource);
    else entries.delete(`${op.kind}\0${op.key}`);
  }
  return [...entries.values()];
}

