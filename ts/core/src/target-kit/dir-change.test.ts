import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { changeIn } from "./dir-change.js";

test("changeIn resolves on a change in the directory, long before its fallback", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "vmctl-dir-change-"));
  try {
    let resolved = false;
    const waiting = changeIn(dir, 60_000).then(() => {
      resolved = true;
    });
    writeFileSync(join(dir, "exit"), "0");
    await Promise.race([waiting, new Promise((r) => setTimeout(r, 10_000))]);
    t.true(resolved, "no wake-up on a file created in the watched directory");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("changeIn falls back to its timer for a directory that does not exist", async (t) => {
  const outcome = await Promise.race([
    changeIn("/nonexistent/vmctl-dir", 20).then(() => "resolved"),
    new Promise((r) => setTimeout(() => r("hung"), 10_000)),
  ]);
  t.is(outcome, "resolved");
});
