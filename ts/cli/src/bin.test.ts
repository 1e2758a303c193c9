// The bin's code cache (src/bin.ts): one per bundle (cli.cjs; client.cjs, loaded by the
// verbs that need gRPC and by doctor), written by the first run that loads it into the
// user's cache dir, used afterwards (not rewritten), and the verbs that import ESM
// packages on demand (doctor, daemon) still work from the cache; a cache dir others can
// write is ignored.
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

test("the first run writes one code cache per bundle it loads; later runs use them without rewriting, doctor's on-demand import included", (t) => {
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

  const doctorRun = () => {
    const doctor = vmctl("doctor", "--json");
    t.is(doctor.status, 0, doctor.stderr);
    t.is(doctor.stderr, "", "no warnings");
    t.is(typeof (JSON.parse(doctor.stdout) as { kvm: { available: boolean } }).kvm.available, "boolean");
  };
  // --version never loads the gRPC bundle; doctor does, and writes its cache once.
  doctorRun();
  const both = readdirSync(cacheDir).sort();
  t.is(both.length, 2, both.join(", "));
  t.true(both.includes(written[0] as string));
  const client = both.find((name) => name.startsWith("client-")) ?? "";
  t.regex(client, /^client-\d+-\d+-\d+-.+\.bin$/);
  const clientBefore = statSync(join(cacheDir, client));
  doctorRun();
  // A rejected cache would be rewritten at exit (new inode): the same file means it was used.
  t.deepEqual(readdirSync(cacheDir).sort(), both);
  t.is(statSync(file).ino, before.ino, "the cache was accepted, not rewritten");
  t.is(statSync(join(cacheDir, client)).ino, clientBefore.ino, "the client bundle's cache too");

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
