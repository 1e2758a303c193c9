// conformanceTests() with node:test: run in a child `node --test` so its report is real,
// and each check shows up as a subtest of one test.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import test from "ava";

const dir = mkdtempSync(join(tmpdir(), "vmctl-node-test-"));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

test("conformanceTests registers every check as a node:test subtest, and they pass against the process target", (t) => {
  const script = join(dir, "process.node-test.ts");
  const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
  writeFileSync(
    script,
    [
      `import { test } from "node:test";`,
      `import { conformanceTests } from ${JSON.stringify(here("./index.ts"))};`,
      `import { PROCESS_PLUGIN_DIR, processFixtures } from ${JSON.stringify(here("./testing/process-fixtures.ts"))};`,
      `conformanceTests(test, { pluginPath: PROCESS_PLUGIN_DIR, fixtures: processFixtures, options: { only: /^(validate|lifecycle|capabilities\\/pause)/ } }, { title: "process" });`,
    ].join("\n"),
  );
  const run = spawnSync(process.execPath, ["--import", "tsx", "--test", "--test-reporter=tap", script], {
    cwd: fileURLToPath(new URL("../../../", import.meta.url)),
    encoding: "utf8",
    timeout: 60_000,
  });
  t.is(run.status, 0, `${run.stdout}\n${run.stderr}`);
  for (const name of ["validate/rejects-invalid", "validate/accepts-valid", "lifecycle/exit-0", "lifecycle/exit-7", "capabilities/pause"]) {
    t.regex(run.stdout, new RegExp(`ok \\d+ - ${name.replace("/", "\\/")}`));
  }
  t.regex(run.stdout, /# skip-not-claimed: pause not claimed/);
});
