// The kit catches deliberately broken plugins (src/testing/broken/): each one fails the
// checks for the promise it breaks, with a reason that says what went wrong, and passes
// the others.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import type { CheckResult, ConformanceReport, FactoryInit } from "./index.js";
import { runConformance } from "./index.js";
import { leakyTarget } from "./testing/broken/leaky.js";
import { lyingCapabilitiesTarget } from "./testing/broken/lying-capabilities.js";
import { stubbornStopTarget } from "./testing/broken/stubborn-stop.js";
import { holdersOf } from "./harness/host-processes.js";
import { processFixtures } from "./testing/process-fixtures.js";

const fixtures = processFixtures;
// Only the stubborn-stop run waits out the margin, so only it gets a short one; the others
// keep the default, or a loaded machine could push an honest forced stop past it.
const shortMargin = { ...processFixtures, timeouts: { forceMarginMs: 2000 } };

// Every harness of this file lives under one dir, so what they leave behind can be looked for.
const scratch = mkdtempSync(join(tmpdir(), "vmctl-broken-"));
test.after.always(() => rmSync(scratch, { recursive: true, force: true }));

async function run(factory: FactoryInit, withFixtures = fixtures): Promise<ConformanceReport> {
  return runConformance({ factory, target: "process", fixtures: withFixtures, options: { tmpDir: scratch } });
}

function failed(report: ConformanceReport): Map<string, CheckResult> {
  return new Map(report.checks.filter((c) => c.status === "fail").map((c) => [c.name, c]));
}

test.serial("a plugin whose destroy() leaks fails the destroy and adopt checks, naming the ledger entry and the live process", async (t) => {
  const report = await run(leakyTarget);
  const fails = failed(report);
  t.false(report.ok);
  for (const name of ["destroy/running", "destroy/exited", "adopt/running", "adopt/exited"]) {
    const check = fails.get(name);
    t.truthy(check, `${name} should fail`);
    t.regex(check?.reason ?? "", /destroy\(\) left 1 resource\(s\) in the ledger, never released: process main/);
  }
  // A running one is also killed by the kit afterwards, and that is reported.
  t.regex(fails.get("destroy/running")?.reason ?? "", /the kit had to kill what destroy\(\) left running: process main \(pid \d+\)/);
  // Every other check fails too, only because its teardown destroy() leaked and the kit had to kill it.
  for (const [name, check] of fails) {
    if (!name.startsWith("destroy/") && !name.startsWith("adopt/")) t.regex(check.reason ?? "", /cleanup: the kit had to kill what destroy\(\) left running/, name);
  }
});

test.serial("a plugin whose stop() ignores the timeout fails stop/forced within its budget and passes the rest", async (t) => {
  const started = Date.now();
  const report = await run(stubbornStopTarget, shortMargin);
  const fails = failed(report);
  t.deepEqual([...fails.keys()], ["stop/forced"]);
  t.regex(
    fails.get("stop/forced")?.reason ?? "",
    /stop\(\{ timeoutMs: 1000 \}\) of a workload that ignores the polite stop had not returned after 3000 ms \(phase now running\): stop must force/,
  );
  t.log(`whole run ${Date.now() - started} ms`);
});

test.serial("a plugin that claims pause and logsFollow but does not deliver fails both capability checks", async (t) => {
  const report = await run(lyingCapabilitiesTarget);
  const fails = failed(report);
  t.deepEqual([...fails.keys()].sort(), ["capabilities/logsFollow", "capabilities/pause"]);
  t.regex(fails.get("capabilities/pause")?.reason ?? "", /after pause\(\) resolved, state\(\) says "running", expected "paused"/);
  t.regex(fails.get("capabilities/logsFollow")?.reason ?? "", /logs\(\{ follow: true \}\) ended after \d+ bytes while the service was running/);
});

test.serial("a plugin that cannot be loaded is one failing check, not a throw", async (t) => {
  const report = await runConformance({ pluginPath: "/nonexistent/vmctl-plugin-x", fixtures });
  t.false(report.ok);
  t.is(report.checks[0]?.name, "plugin/load");
  t.regex(report.checks[0]?.reason ?? "", /cannot read \/nonexistent\/vmctl-plugin-x\/package\.json/);
});

test.serial("nothing the broken plugins started is left running", (t) => {
  // The kit killed what the leaky plugin left, and removed every harness dir.
  t.deepEqual([...holdersOf(scratch).values()], []);
});
