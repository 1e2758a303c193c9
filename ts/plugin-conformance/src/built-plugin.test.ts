// builtPluginPath: the package directory, only when its vmctl.entry is built and current.
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import test from "ava";
import { builtPluginPath } from "./built-plugin.js";

test("a missing or stale build is refused, saying what to build; a current one is the package dir", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "vmctl-built-plugin-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "vmctl-plugin-x", vmctl: { entry: "./dist/index.js", targets: ["x"] } }));
  mkdirSync(join(dir, "src/testing"), { recursive: true });
  writeFileSync(join(dir, "src/index.ts"), "");
  t.throws(() => builtPluginPath(dir), { message: /^vmctl-plugin-x: \.\/dist\/index\.js is missing: .* build it first \(npm run build in / });

  mkdirSync(join(dir, "dist"));
  writeFileSync(join(dir, "dist/index.js"), "");
  const past = new Date(Date.now() - 60_000);
  utimesSync(join(dir, "dist/index.js"), past, past);
  t.throws(() => builtPluginPath(dir), { message: /^vmctl-plugin-x: \.\/dist\/index\.js is older than src\/index\.ts: the kit would check a stale build/ });

  // Tests and test helpers are not part of the build.
  utimesSync(join(dir, "src/index.ts"), past, past);
  writeFileSync(join(dir, "src/index.test.ts"), "");
  writeFileSync(join(dir, "src/testing/context.ts"), "");
  t.is(builtPluginPath(pathToFileURL(`${dir}/`)), dir);
  t.is(builtPluginPath(dir), dir);
});
