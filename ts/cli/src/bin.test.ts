// The bin's code cache (src/bin.ts): written on the first run into the user's cache dir,
// used afterwards (not rewritten), and the verbs that import ESM packages on demand
// (doctor, daemon) still work from the cache; a cache dir others can write is ignored.
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import test from "ava";

const bin = fileURLToPath(new URL("../dist/bin.cjs", import.meta.url));

function sandbox(t: { teardown(fn: () => void): void }) {
  const home = mkdtempSync(join(tmpdir(), "vmctl-cache-test-"));
  t.teardown(() => rmSync(home, { recursive: true, force: true }));
  const vmctl = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { env: { ...process.env, XDG_CACHE_HOME: home }, encoding: "utf8" });
  return { vmctl, cacheDir: join(home, "vmctl", "compile-cache") };
}

test("the first run writes one code cache; later runs use it without rewriting it, doctor's on-demand import included", (t) => {
  const { vmctl, cacheDir } = sandbox(t);
  const first = vmctl("--version");
  t.is(first.status, 0, first.stderr);
  t.regex(first.stdout, /^\d+\.\d+\.\d+/);
  const written = readdirSync(cacheDir);
  t.is(written.length, 1, written.join(", "));
  t.regex(written[0] ?? "", /^cli-\d+-\d+-\d+-.+\.bin$/);
  t.is(statSync(cacheDir).mode & 0o777, 0o700);
  const file = join(cacheDir, written[0] as string);
  const before = statSync(file);

  for (let i = 0; i < 2; i++) {
    const doctor = vmctl("doctor", "--json");
    t.is(doctor.status, 0, doctor.stderr);
    t.is(doctor.stderr, "", "no warnings");
    t.is(typeof (JSON.parse(doctor.stdout) as { kvm: { available: boolean } }).kvm.available, "boolean");
  }
  // A rejected cache would be rewritten at exit (new inode): the same file means it was used.
  t.deepEqual(readdirSync(cacheDir), written);
  t.is(statSync(file).ino, before.ino, "the cache was accepted, not rewritten");

  // A damaged cache is rejected by V8, the bundle is compiled afresh and the cache rewritten.
  writeFileSync(file, "not a code cache");
  const after = vmctl("--version");
  t.is(after.status, 0, after.stderr);
  t.true(statSync(file).size > 1024, "the cache was rewritten");
});

test("a cache dir that others can write is neither read nor written", (t) => {
  const { vmctl, cacheDir } = sandbox(t);
  mkdirSync(cacheDir, { recursive: true });
  chmodSync(cacheDir, 0o777);
  const result = vmctl("--version");
  t.is(result.status, 0, result.stderr);
  t.deepEqual(readdirSync(cacheDir), []);
});
