// The kit's orchestrator restart in a fresh process: a child process (first-orchestrator)
// loads the plugin from its package directory, makes one service and brings it to the
// state asked for; the kit kills it with SIGKILL, as a daemon crash would, and hands what
// an engine would have kept — the spec, the last record(), the ledger on disk — to adopt()
// on a new factory in the kit's own process.
import { spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { ControllerRecord, JsonValue, OwnedResource } from "@vmctl/core/contract";
import { fail } from "../checks/budget.js";
import type { CheckEnv } from "../checks/check-env.js";
import type { HarnessContext } from "../harness/conformance-harness.js";
import { readLedgerFile, type FirstOrchestratorEvent, type FirstOrchestratorJob } from "./job.js";

const here = fileURLToPath(import.meta.url);

/** The child's command line: its script next to this module, built (dist) or source (with this process's loader flags, e.g. tsx). */
function childArgs(jobFile: string): string[] {
  const fromSource = here.endsWith(".ts");
  const script = join(dirname(here), fromSource ? "first-orchestrator.ts" : "first-orchestrator.js");
  return fromSource ? [...process.execArgv, script, jobFile] : [script, jobFile];
}

export interface Crashed {
  readonly id: string;
  /** A context over the service's dir whose ledger holds what the dead process's ledger held (for adopt). */
  readonly ctx: HarnessContext;
  /** What the engine would hand adopt(): the spec, the last record(), the unreleased ledger entries. */
  readonly record: ControllerRecord;
  /** Mode "interrupted": the intend() inside start() the process died right after; undefined if start() recorded nothing. */
  readonly killedAtIntend?: OwnedResource;
}

/**
 * Runs the first orchestrator for `spec` in a fresh process until the service reaches
 * `mode` (running and printing `line`, exited, or killed inside start()), then SIGKILLs it.
 */
export async function crashAfter(env: CheckEnv, mode: FirstOrchestratorJob["mode"], spec: unknown, line?: string): Promise<Crashed> {
  const pluginPath = env.pluginPath;
  if (pluginPath === undefined) throw new Error("a fresh-process restart needs the plugin's package path");
  const { harness } = env;
  const id = harness.serviceId(mode === "interrupted" ? "interrupted" : "fresh");
  const serviceDir = harness.serviceDirOf(id);
  mkdirSync(serviceDir, { recursive: true });
  const work = join(harness.dir, "restarts");
  mkdirSync(work, { recursive: true });
  const job: FirstOrchestratorJob = {
    pluginPath,
    target: harness.target,
    stateDir: harness.stateDir,
    targetOptions: harness.targetOptions,
    serviceId: id,
    serviceDir,
    ownerLabels: harness.ownerLabels(id),
    ledgerFile: join(work, `${id}.ledger.jsonl`),
    spec,
    mode,
    ...(line === undefined ? {} : { line }),
    stepMs: env.timeouts.stepMs,
    ...(harness.hasImages ? { imageStore: join(work, `${id}.images`) } : {}),
  };
  const jobFile = join(work, `${id}.job.json`);
  writeFileSync(jobFile, JSON.stringify(job));

  const child = spawn(process.execPath, childArgs(jobFile), { stdio: ["ignore", "pipe", "pipe"] });
  const events: FirstOrchestratorEvent[] = [];
  let stderr = "";
  let pending = "";
  let settle: (() => void) | undefined;
  const wanted = (e: FirstOrchestratorEvent): boolean => e.event === "error" || e.event === "ready" || e.event === "started";
  child.stdout.setEncoding("utf8").on("data", (d: string) => {
    pending += d;
    let nl: number;
    while ((nl = pending.indexOf("\n")) >= 0) {
      const text = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      try {
        const e = JSON.parse(text) as FirstOrchestratorEvent;
        events.push(e);
        if (wanted(e)) settle?.();
      } catch {
        stderr += `(stdout) ${text}\n`;
      }
    }
  });
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr = (stderr + d).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.once("close", () => resolve()));
  const what = `the first orchestrator (a fresh process, pid ${child.pid}) to ${mode === "running" ? "run the service" : mode === "exited" ? "see the service exit" : "start the service"}`;
  try {
    await env.step(
      what,
      () =>
        new Promise<void>((resolve) => {
          settle = resolve;
          void exited.then(resolve);
          if (events.some(wanted)) resolve();
        }),
      env.timeouts.stepMs * 2,
    );
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await exited;
  }
  // Known to the harness from here on, so whatever the ledger names is reaped even if a check fails.
  const resources = readLedgerFile(job.ledgerFile);
  const ctx = harness.context(id, resources);
  const failed = events.find((e) => e.event === "error");
  if (failed?.event === "error") fail(`the first orchestrator (a fresh process) failed at ${failed.step}: ${failed.error}${stderr ? `; stderr: ${stderr.trim()}` : ""}`);
  const created = events.find((e) => e.event === "created");
  if (created?.event !== "created") fail(`the first orchestrator (a fresh process) ended before create() returned: ${stderr.trim() || "no output"}`);
  const killedAt = events.find((e) => e.event === "killing-at-intend");
  if (mode !== "interrupted" && !events.some((e) => e.event === "ready")) {
    fail(`the first orchestrator (a fresh process) ended before the service was ${mode}: ${stderr.trim() || "no output"}`);
  }
  if (mode === "interrupted" && killedAt === undefined && !events.some((e) => e.event === "started")) {
    fail(`the first orchestrator (a fresh process) died inside start() without being killed by the kit: ${stderr.trim() || "no output"}`);
  }
  let data: JsonValue = created.record;
  for (const e of events) if (e.event === "ready" || e.event === "started") data = e.record;
  return {
    id,
    ctx,
    record: { id, target: harness.target, spec: created.spec, data, resources },
    ...(killedAt?.event === "killing-at-intend" ? { killedAtIntend: killedAt.resource } : {}),
  };
}
