// The bin's code cache (src/bin.ts): written on the first run, used afterwards, and the
// verbs that import ESM packages on demand (doctor, daemon) still work from the cache.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import test from "ava";

const bin = fileURLToPath(new URL("../dist/bin.cjs", import.meta.url));

test("the first run writes one code cache; later runs use it, including doctor's on-demand import of the addon", (t) => {
  const tmp = mkdtempSync(join(tmpdir(), "vmctl-cache-test-"));
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }));
  const vmctl = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { env: { ...process.env, TMPDIR: tmp }, encoding: "utf8" });
  const cacheDir = join(tmp, `vmctl-compile-cache-${process.getuid?.()}`);

  const first = vmctl("--version");
  t.is(first.status, 0, first.stderr);
  t.regex(first.stdout, /^\d+\.\d+\.\d+/);
  const written = readdirSync(cacheDir);
  t.is(written.length, 1, written.join(", "));
  t.regex(written[0] ?? "", /^cli-\d+-\d+-\d+-.+\.bin$/);

  for (let i = 0; i < 2; i++) {
    const doctor = vmctl("doctor", "--json");
    t.is(doctor.status, 0, doctor.stderr);
    t.is(doctor.stderr, "", "no warnings");
    t.is(typeof (JSON.parse(doctor.stdout) as { kvm: { available: boolean } }).kvm.available, "boolean");
  }
  t.deepEqual(readdirSync(cacheDir), written, "a cached run neither rewrites nor adds a cache");

  // A damaged cache is rejected by V8, the bundle is compiled afresh and the cache rewritten.
  const file = join(cacheDir, written[0] as string);
  writeFileSync(file, "not a code cache");
  const after = vmctl("--version");
  t.is(after.status, 0, after.stderr);
  t.true(statSync(file).size > 1024, "the cache was rewritten");
});
