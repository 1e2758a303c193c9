// The kit's copy check against the process target given a copyOut (src/testing/host-copy.ts,
// node-tar over host paths): honest ones pass, with exec and without (the workload writes
// the tree); one that follows symlinks fails naming the link; unclaimed is a skip.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import type { CheckResult, ConformanceFixtures, FactoryInit } from "./index.js";
import { COPY_UNICODE_NAME, runConformance } from "./index.js";
import { PROCESS_PLUGIN_DIR, processFixtures } from "./testing/process-fixtures.js";
import { followingCopyTarget, hostCopyTarget, hostCopyWithoutExecTarget } from "./testing/host-copy.js";

const scratch = mkdtempSync(join(tmpdir(), "vmctl-copy-check-"));
test.after.always(() => rmSync(scratch, { recursive: true, force: true }));

/** The services are host processes: the tree goes under a host dir of this test's. */
const fixtures: ConformanceFixtures = {
  ...processFixtures,
  copy: {
    dir: join(scratch, "trees"),
    running: (_path, script) => ({ spec: { args: ["sh", "-c", `${script ?? ""}\nwhile :; do echo tick; sleep 0.05; done`] }, line: "tick" }),
  },
};

async function copyCheck(source: { factory: FactoryInit } | { pluginPath: string }): Promise<CheckResult | undefined> {
  const report = await runConformance({ ...source, target: "process", fixtures, options: { tmpDir: scratch, only: /^capabilities\/copy$/ } });
  return report.checks.find((c) => c.name === "capabilities/copy");
}

test("an honest copyOut passes the copy check: the tree written through exec, compared running and after the exit", async (t) => {
  const check = await copyCheck({ factory: hostCopyTarget });
  t.is(check?.status, "pass", check?.reason);
  t.regex(check?.reason ?? "", /tree written through exec; 6 entries compared running and after the exit/);
});

test("copy without exec: the workload runs the kit's script (fixtures.copy.running), the kit's own sums are the reference", async (t) => {
  const check = await copyCheck({ factory: hostCopyWithoutExecTarget });
  t.is(check?.status, "pass", check?.reason);
  t.regex(check?.reason ?? "", /tree written by the workload/);
});

test("copy without exec and without fixtures.copy.running fails, saying what to give", async (t) => {
  const report = await runConformance({ factory: hostCopyWithoutExecTarget, target: "process", fixtures: processFixtures, options: { tmpDir: scratch, only: /^capabilities\/copy$/ } });
  const check = report.checks.find((c) => c.name === "capabilities/copy");
  t.is(check?.status, "fail");
  t.regex(check?.reason ?? "", /copy is claimed without exec: give fixtures\.copy\.running/);
});

test("a copyOut that packs what a symlink points to fails the copy check, naming the link", async (t) => {
  const check = await copyCheck({ factory: followingCopyTarget });
  t.is(check?.status, "fail");
  t.true((check?.reason ?? "").includes(`/link" is {"type":"File"`), check?.reason);
  t.true((check?.reason ?? "").includes(`expected {"type":"SymbolicLink","linkpath":${JSON.stringify(COPY_UNICODE_NAME)}}`), check?.reason);
});

test("a target that does not claim copy (and has no copyOut) is a skip, saying so", async (t) => {
  const check = await copyCheck({ pluginPath: PROCESS_PLUGIN_DIR });
  t.is(check?.status, "skip-not-claimed");
  t.is(check?.reason, "copy not claimed; the controller offers no copyOut()");
});
