// The kit catches deliberately broken plugins (src/testing/broken/): each one fails the
// checks for the promise it breaks, with a reason that says what went wrong, and passes
// the others.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import test from "ava";
import type { HostRequirement, PluginEnvironment, PluginRegistration, ServiceFactory } from "@vmctl/core/contract";
import type { CheckResult, ConformanceReport, FactoryInit } from "./index.js";
import { runConformance } from "./index.js";
import { leakyTarget } from "./testing/broken/leaky.js";
import { lyingCapabilitiesTarget } from "./testing/broken/lying-capabilities.js";
import { stubbornStopTarget } from "./testing/broken/stubborn-stop.js";
import { holdersOf } from "./harness/host-processes.js";
import { PROCESS_PLUGIN_DIR, processFixtures } from "./testing/process-fixtures.js";

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

/** A plugin package whose services die with the orchestrator process that started them (a watchdog kills them). */
function diesWithDaemonPlugin(): string {
  const dir = join(scratch, "vmctl-plugin-dies-with-daemon");
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, "package.json"),
    JSON.stringify({ name: "vmctl-plugin-dies-with-daemon", version: "0.0.1", type: "module", vmctl: { entry: "./index.js", targets: ["process"] }, engines: { vmctl: "*" } }),
  );
  writeFileSync(
    join(dir, "index.js"),
    [
      'import { spawn } from "node:child_process";',
      `import base from ${JSON.stringify(pathToFileURL(join(PROCESS_PLUGIN_DIR, "index.js")).href)};`,
      "const watched = (c) => new Proxy(c, { get(t, k) {",
      '  if (k === "start") return async () => {',
      "    await t.start();",
      "    const { pid } = await t.state();",
      // A watchdog on a pipe from the process that started the service: when that process
      // dies, the pipe closes, `read` returns, and the service's process group is killed.
      "    if (!pid) return;",
      "    const w = spawn(\"sh\", [\"-c\", `read x; kill -9 -${pid} 2>/dev/null`], { stdio: [\"pipe\", \"ignore\", \"ignore\"], cwd: \"/\" });",
      "    w.stdin.unref(); w.unref();",
      "  };",
      "  const v = t[k]; return typeof v === \"function\" ? v.bind(t) : v;",
      "} });",
      "export default { name: \"vmctl-plugin-dies-with-daemon\", targets: [{ target: \"process\", init: async (env) => {",
      "  const f = await base.targets[0].init(env);",
      "  return { target: f.target, capabilities: f.capabilities, validate: (s) => f.validate(s), create: async (...a) => watched(await f.create(...a)), adopt: (...a) => f.adopt(...a), close: () => f.close?.() };",
      "} }] };",
    ].join("\n"),
  );
  return dir;
}

test.serial("a plugin whose services die with the orchestrator process fails adopt/running: the kit restarts in a fresh process", async (t) => {
  const report = await runConformance({ pluginPath: diesWithDaemonPlugin(), fixtures, options: { tmpDir: scratch, only: /^adopt\/(running|exited)$/ } });
  const fails = failed(report);
  t.deepEqual([...fails.keys()], ["adopt/running"], JSON.stringify(report.checks, null, 2));
  t.regex(
    fails.get("adopt/running")?.reason ?? "",
    /the adopted controller says "exited" .* for a service that ran when the orchestrator process that started it was killed \(SIGKILL\): a service must outlive the orchestrator/,
  );
});

test.serial("a plugin that cannot be loaded is one failing check, not a throw", async (t) => {
  const report = await runConformance({ pluginPath: "/nonexistent/vmctl-plugin-x", fixtures });
  t.false(report.ok);
  t.is(report.checks[0]?.name, "plugin/load");
  t.regex(report.checks[0]?.reason ?? "", /cannot read \/nonexistent\/vmctl-plugin-x\/package\.json/);
});

test.serial("a registration whose requires is malformed fails registration/requires, naming the field", async (t) => {
  // The process target's factory; only its declared requires differ.
  const { ProcessFactory } = (await import(pathToFileURL(join(PROCESS_PLUGIN_DIR, "lib/process-factory.js")).href)) as { ProcessFactory: new (env: PluginEnvironment) => ServiceFactory };
  const withFactory = (requires: unknown): PluginRegistration => ({
    name: "vmctl-plugin-x",
    targets: [{ target: "process", requires: requires as HostRequirement[], init: (env) => new ProcessFactory(env) }],
  });
  const only = { tmpDir: scratch, only: /^registration\/requires$/ };
  const bad = await runConformance({ registration: withFactory([{ kind: "binary", name: "sh", package: "dash", why: "x" }, { kind: "binary", name: "sh", why: "no fix" }]), fixtures, options: only });
  t.like(bad.checks, [{ name: "registration/requires", status: "fail", reason: "the registration's requires is malformed: ValidationError INVALID_ARGUMENT: requires[1].package: required when there is no fix (say how to get it)" }]);
  const missing = await runConformance({ registration: withFactory([{ kind: "binary", name: "vmctl-no-such-tool", optional: true, fix: "build it", why: "x" }]), fixtures, options: only });
  t.like(missing.checks, [{ name: "registration/requires", status: "pass", reason: "1 host requirement(s) well formed; not met here: vmctl-no-such-tool (optional): not found on PATH or in /usr/local/sbin, /usr/sbin, /sbin" }]);
  const factoryOnly = await runConformance({ factory: (env) => new ProcessFactory(env), target: "process", fixtures, options: only });
  t.like(factoryOnly.checks, [{ name: "registration/requires", status: "skip-not-claimed" }]);
});

test.serial("nothing the broken plugins started is left running", (t) => {
  // The kit killed what the leaky plugin left, and removed every harness dir.
  t.deepEqual([...holdersOf(scratch).values()], []);
});
