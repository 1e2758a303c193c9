// The plugin template (examples/vmctl-plugin-template) as a third party gets it: copied
// to a directory outside this repository, built there with its own tsconfig, its
// @vmctl/core resolving the way an npm install of a peer dependency makes it resolve
// (node_modules/@vmctl/core → the orchestrator's copy; here a symlink to ts/core), and
// checked by the real `vmctl-conformance` bin in a child process.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import test from "ava";
import type { ConformanceReport } from "./index.js";
import { buildTemplateAt } from "./testing/template-outside.js";

const REPO = fileURLToPath(new URL("../../../", import.meta.url));
const CLI = join(REPO, "ts/plugin-conformance/dist/cli.js");

/** The built bin, or a loud reason: these tests run what `npx vmctl-conformance` runs. */
function requireBuiltCli(): void {
  let built: number;
  try {
    built = statSync(CLI).mtimeMs;
  } catch {
    throw new Error(`${CLI} is missing: build the kit first (npm run build, or npx tsup in ts/plugin-conformance)`);
  }
  const src = join(REPO, "ts/plugin-conformance/src");
  const stale = (readdirSync(src, { recursive: true }) as string[]).filter(
    (f) => f.endsWith(".ts") && !f.endsWith(".test.ts") && !f.startsWith("testing") && statSync(join(src, f)).mtimeMs > built,
  );
  if (stale.length > 0) throw new Error(`${CLI} is older than ${stale.join(", ")}: rebuild the kit (npx tsup in ts/plugin-conformance)`);
}

const dir = mkdtempSync(join(tmpdir(), "vmctl-template-"));
const plugin = join(dir, "vmctl-plugin-template");
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

test.before(() => {
  requireBuiltCli();
  if (!relative(REPO, dir).startsWith("..")) throw new Error(`${dir} is inside the repository; the template must be checked from outside`);
  buildTemplateAt(plugin);
});

function conformance(...args: string[]) {
  return spawnSync(process.execPath, [CLI, ...args], { cwd: dir, encoding: "utf8", timeout: 60_000 });
}

test.serial("the template, built outside the workspace, passes every check of vmctl-conformance", (t) => {
  const result = conformance("./vmctl-plugin-template", "--json");
  t.is(result.status, 0, `${result.stdout}\n${result.stderr}`);
  const report = JSON.parse(result.stdout) as ConformanceReport;
  t.is(report.plugin, "vmctl-plugin-template@0.1.0");
  t.is(report.target, "process");
  t.true(report.ok);
  const failed = report.checks.filter((c) => c.status === "fail");
  t.deepEqual(failed, []);
  // Every check ran, and only unclaimed capabilities were not exercised.
  t.is(report.checks.length, 21);
  // The template declares what it needs on the host (requires): well formed, and met here.
  t.like(report.checks.find((c) => c.name === "registration/requires"), { status: "pass", reason: "1 host requirement(s) well formed, all met here" });
  t.deepEqual(
    report.checks.filter((c) => c.status === "skip-not-claimed").map((c) => c.name),
    ["capabilities/pause", "capabilities/exec", "capabilities/copy", "capabilities/network", "capabilities/volumes"],
  );
  // The restart checks ran the first orchestrator in a fresh process, and the interrupted start was resumed, not lost.
  const interrupted = report.checks.find((c) => c.name === "adopt/interrupted-start");
  t.regex(interrupted?.reason ?? "", /killed inside start\(\) right after intend\(process main\)/);
  t.notRegex(interrupted?.reason ?? "", /lost/);
  t.is(report.checks.find((c) => c.name === "run/spec-from-run")?.status, "pass");
  // How long it takes is bench/plugin-kit.bench.ts's (target 5 s), not a test's.
  t.log(`kit against the template: ${report.durationMs} ms`);
});

test.serial("vmctl-conformance prints each failing check with its reason and exits 1", (t) => {
  // Fixtures that expect the wrong field: the kit must say so, not pass.
  const fixtures = join(dir, "wrong-field.json");
  writeFileSync(
    fixtures,
    JSON.stringify({
      specs: {
        exitsWith: { spec: { args: ["sh", "-c", "echo done {{code}}; exit {{code}}"] }, line: "done {{code}}" },
        runsUntilStopped: { spec: { args: ["sh", "-c", "while :; do echo tick; sleep 0.05; done"] }, line: "tick" },
        ignoresPoliteStop: { spec: { args: ["sh", "-c", "trap '' TERM; echo ignoring; while :; do sleep 0.05; done"] }, line: "ignoring" },
        invalid: [{ spec: { args: ["sh", 1] }, field: "args[0]" }],
      },
    }),
  );
  const result = conformance("./vmctl-plugin-template", "--fixtures", fixtures, "--only", "^validate/");
  t.is(result.status, 1, result.stderr);
  t.regex(result.stdout, /FAIL {2}validate\/rejects-invalid/);
  t.regex(result.stdout, /field args\[0\]: the ValidationError names args\[1\]/);
  t.regex(result.stdout, /PASS {2}validate\/accepts-valid/);
  t.regex(result.stdout, /FAILED: 1 passed, 1 failed/);
});

test.serial("vmctl-conformance refuses bad usage with exit status 2", (t) => {
  t.is(conformance().status, 2);
  const noFixtures = conformance(REPO);
  t.is(noFixtures.status, 2);
  t.regex(noFixtures.stderr, /no fixtures: pass --fixtures/);
});
