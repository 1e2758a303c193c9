// The kit's exec check against the process target given an exec (src/testing/host-exec.ts):
// an honest one passes; one that drops stdin fails, saying the line did not come back.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import type { CheckResult, FactoryInit } from "./index.js";
import { runConformance } from "./index.js";
import { deafExecTarget } from "./testing/broken/deaf-exec.js";
import { hostExecTarget } from "./testing/host-exec.js";
import { processFixtures } from "./testing/process-fixtures.js";

const scratch = mkdtempSync(join(tmpdir(), "vmctl-exec-check-"));
test.after.always(() => rmSync(scratch, { recursive: true, force: true }));

async function execCheck(factory: FactoryInit): Promise<CheckResult | undefined> {
  // host-exec has no terminal: the check's terminal part is skipped (and noted).
  const fixtures = { ...processFixtures, exec: { args: ["sh", "-c", "echo vmctl-conformance-exec"], stdout: "vmctl-conformance-exec", tty: false } };
  const report = await runConformance({ factory, target: "process", fixtures, options: { tmpDir: scratch, only: /^capabilities\/exec$/ } });
  return report.checks.find((c) => c.name === "capabilities/exec");
}

test("an exec that runs the command and passes stdin on passes the exec check", async (t) => {
  const check = await execCheck(hostExecTarget);
  t.is(check?.status, "pass", check?.reason);
  t.regex(check?.reason ?? "", /the terminal part was not exercised \(fixtures\.exec\.tty: false\)/);
});

test("an exec that drops what is written to stdin fails the exec check, saying what came back", async (t) => {
  const check = await execCheck(deafExecTarget);
  t.is(check?.status, "fail");
  t.regex(check?.reason ?? "", /exec\(\{"args":\["cat"\],"stdin":true\}\) printed "", expected the line written to its stdin, "vmctl-conformance-stdin-[0-9a-z]+"/);
});
