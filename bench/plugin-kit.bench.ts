// The conformance kit against the plugin template (examples/vmctl-plugin-template): what a
// plugin author waits for on each `npm test`. The template is built in a temp directory
// against this checkout's built @vmctl/core (as the template's own test does), then
// `vmctl-conformance DIR --json` runs RUNS times; the median of the kit's own durationMs
// and of the process's wall time. (tests/sdk/packed-sdk.test.ts runs it from the packed
// tarballs, for correctness.)
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildTemplateAt } from "../ts/plugin-conformance/src/testing/template-outside.js";
import { median, report, reportError } from "./lib/report.js";

const RUNS = 5;
const REPO = fileURLToPath(new URL("../", import.meta.url));
const KIT = join(REPO, "ts/plugin-conformance/dist/cli.js");

const dir = mkdtempSync(join(tmpdir(), "vmctl-bench-kit-"));
try {
  const plugin = join(dir, "vmctl-plugin-template");
  buildTemplateAt(plugin);
  const kitMs: number[] = [];
  const wallMs: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const started = performance.now();
    const run = spawnSync(process.execPath, [KIT, plugin, "--json"], { cwd: dir, encoding: "utf8", timeout: 120_000 });
    wallMs.push(performance.now() - started);
    const result = JSON.parse(run.stdout) as { ok: boolean; durationMs: number; checks: { name: string; status: string; reason?: string }[] };
    if (run.status !== 0 || !result.ok) {
      const failed = result.checks.filter((c) => c.status === "fail").map((c) => `${c.name}: ${c.reason}`);
      throw new Error(`the kit failed the template (exit ${run.status}): ${failed.join("; ")}`);
    }
    kitMs.push(result.durationMs);
  }
  report({ name: "conformance_kit_template", unit: "ms", value: median(kitMs), runs: RUNS, target: "<= 5000 ms", conditions: { processWallMs: Math.round(median(wallMs)) } });
} catch (err) {
  reportError("conformance_kit_template", (err as Error).message);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
