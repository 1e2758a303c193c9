// `vmctl kernel build|ls` as a user runs them: the built command, real caches. The real
// cache (/var/cache/vmctl/kernel) for the happy path, where images/kernel/build has
// built (or is building: the first call then waits on its lock) the kernel; temp caches
// for the empty and hostile ones. No test here starts a kernel build in a temp cache.
import { spawn } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import test from "ava";
import type { CachedKernel, KernelCacheListing } from "vmctl-plugin-microvm/kernel-cache";

const bin = fileURLToPath(new URL("../../dist/bin.cjs", import.meta.url));
const buildScript = fileURLToPath(new URL("../../../../images/kernel/build", import.meta.url));
const REAL_CACHE = "/var/cache/vmctl/kernel";
/** A cold build takes ~10 min on 2 cores; the happy-path tests may wait for one in progress. */
const BUILD_WAIT_MS = 25 * 60_000;

const root = mkdtempSync(join(tmpdir(), "vmctl-kernel-cli-"));
chmodSync(root, 0o755);
test.after.always(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshCache = (): string => join(root, `cache${n++}`);

interface Result {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** `vmctl ARGS` with VMCTL_KERNEL_CACHE=cache (unset: the real cache). */
function vmctl(args: readonly string[], options: { cache?: string; timeoutMs?: number; bin?: string; asNobody?: boolean } = {}): Promise<Result> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.VMCTL_KERNEL_CACHE;
  if (options.cache !== undefined) env.VMCTL_KERNEL_CACHE = options.cache;
  const command = [process.execPath, options.bin ?? bin, ...args];
  const [file, argv] = options.asNobody
    ? ["setpriv", ["--reuid=nobody", "--regid=nogroup", "--clear-groups", ...command]]
    : [command[0] as string, command.slice(1)];
  if (options.asNobody) env.HOME = "/nonexistent";
  return new Promise((resolve, reject) => {
    const child = spawn(file, argv, { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 30_000);
    child.once("error", reject);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The one line a failed command prints, checked to be exactly one. */
function oneLine(t: import("ava").ExecutionContext, result: Result): string {
  t.is(result.stdout, "");
  const lines = result.stderr.trimEnd().split("\n");
  t.is(lines.length, 1, result.stderr);
  return lines[0] ?? "";
}

/** The CLI bundle copied where no checkout surrounds it (and where anyone may read it); made once. */
let detached: string | undefined;
function detachedCli(): string {
  if (detached !== undefined) return detached;
  const dir = join(root, "elsewhere", "a", "b");
  mkdirSync(dir, { recursive: true });
  for (const d of [join(root, "elsewhere"), join(root, "elsewhere", "a"), dir]) chmodSync(d, 0o755);
  for (const file of ["bin.cjs", "cli.cjs"]) copyFileSync(join(dirname(bin), file), join(dir, file));
  detached = join(dir, "bin.cjs");
  return detached;
}

// One build (or lock wait) for the whole file: the first test that needs the real kernel waits here.
let built: Promise<Result> | undefined;
const buildReal = (): Promise<Result> => (built ??= vmctl(["kernel", "build"], { timeoutMs: BUILD_WAIT_MS }));

test("kernel build on the real cache: the vmlinux path on stdout, the same as the script's, and fast once cached", async (t) => {
  t.timeout(BUILD_WAIT_MS + 60_000);
  const first = await buildReal();
  t.is(first.code, 0, first.stderr);
  const path = first.stdout.trim();
  const key = readlinkSync(join(REAL_CACHE, "default"));
  t.is(first.stdout, `${join(REAL_CACHE, key, "vmlinux")}\n`);
  t.true(statSync(path).isFile());
  t.regex(first.stderr, /^kernel: /m, "the script's progress reaches the user's stderr");
  // Cached now: nothing is built, the answer comes at once.
  const started = Date.now();
  const again = await vmctl(["kernel", "build"]);
  t.is(again.code, 0, again.stderr);
  t.is(again.stdout, first.stdout);
  t.regex(again.stderr, /^kernel: cached: /m);
  t.true(Date.now() - started < 10_000, `a cached build took ${Date.now() - started} ms`);
  const json = await vmctl(["kernel", "build", "--json"]);
  t.is(json.code, 0, json.stderr);
  const kernel = JSON.parse(json.stdout) as CachedKernel & { cache: string };
  t.like(kernel, { cache: REAL_CACHE, key, vmlinux: path, isDefault: true, sizeBytes: statSync(path).size });
  t.regex(kernel.release ?? "", /^6\.1\./);
});

test("kernel ls on the real cache: the default marked, matching this checkout's config", async (t) => {
  t.timeout(BUILD_WAIT_MS + 60_000);
  t.is((await buildReal()).code, 0);
  const key = readlinkSync(join(REAL_CACHE, "default"));
  const current = await new Promise<string>((resolve, reject) =>
    spawn("bash", [buildScript, "--key"], { stdio: ["ignore", "pipe", "inherit"] })
      .once("error", reject)
      .stdout.setEncoding("utf8")
      .on("data", (d: string) => resolve(d.trim())),
  );
  const text = await vmctl(["kernel", "ls"]);
  t.is(text.code, 0, text.stderr);
  t.is(text.stderr, "");
  const [header, ...rows] = text.stdout.trimEnd().split("\n");
  t.regex(header ?? "", /^DEFAULT +KEY +RELEASE +SIZE +BUILT +CURRENT$/);
  const row = rows.find((r) => r.includes(key));
  t.regex(row ?? "", new RegExp(`^\\* +${key} +6\\.1\\.\\S+ +\\d+\\.\\d MiB +\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d UTC +${key === current ? "yes" : "no"}$`));
  t.is(rows.filter((r) => r.startsWith("*")).length, 1, "one default");

  const json = await vmctl(["kernel", "ls", "--json"]);
  t.is(json.code, 0, json.stderr);
  const listing = JSON.parse(json.stdout) as KernelCacheListing & { currentKey: string | null; currentKeyError: string | null; kernels: (CachedKernel & { current: boolean | null })[] };
  t.is(listing.dir, REAL_CACHE);
  t.is(listing.defaultKey, key);
  t.is(listing.currentKey, current);
  t.is(listing.currentKeyError, null);
  const entry = listing.kernels.find((k) => k.key === key);
  t.like(entry, { isDefault: true, current: key === current, vmlinux: join(REAL_CACHE, key, "vmlinux") });
  // The build just ran from this checkout, so its kernel is the current one.
  t.is(key, current);
});

test("kernel ls on a cache never built: a line saying how to build one, exit 0", async (t) => {
  const cache = freshCache();
  const text = await vmctl(["kernel", "ls"], { cache });
  t.is(text.code, 0, text.stderr);
  t.is(text.stdout, `no guest kernels in ${cache}: build one with \`vmctl kernel build\` (about 10 minutes on 2 cores)\n`);
  t.is(text.stderr, "");
  const json = await vmctl(["kernel", "ls", "--json"], { cache });
  t.is(json.code, 0, json.stderr);
  t.like(JSON.parse(json.stdout), { dir: cache, exists: false, defaultKey: null, kernels: [], ignored: [] });
});

test("kernel ls on a hostile cache: only real kernels listed, the rest noted once each; a broken default is one line, exit 1", async (t) => {
  const cache = freshCache();
  const key = "0123456789abcdef";
  mkdirSync(join(cache, key), { recursive: true });
  writeFileSync(join(cache, key, "vmlinux"), Buffer.alloc(1024 * 1024));
  writeFileSync(join(cache, key, "release"), "6.1.0-test\n");
  symlinkSync(key, join(cache, "default"));
  for (const weird of ["new\nline", "with space", "--json", "0123456789ABCDEF"]) {
    mkdirSync(join(cache, weird));
    writeFileSync(join(cache, weird, "vmlinux"), "");
  }
  mkdirSync(join(cache, "1111111111111111")); // an entry without vmlinux
  const text = await vmctl(["kernel", "ls"], { cache });
  t.is(text.code, 0, text.stderr);
  const rows = text.stdout.trimEnd().split("\n");
  t.is(rows.length, 2, text.stdout);
  t.regex(rows[1] ?? "", new RegExp(`^\\* +${key} +6\\.1\\.0-test +1\\.0 MiB +\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d UTC +no$`));
  t.is(text.stderr, `vmctl: note: ${cache}/1111111111111111 is not a kernel: no vmlinux in it\n`);

  // default pointing nowhere.
  rmSync(join(cache, "default"));
  symlinkSync("fedcba9876543210", join(cache, "default"));
  const dangling = await vmctl(["kernel", "ls"], { cache });
  t.is(dangling.code, 1);
  t.is(oneLine(t, dangling), `vmctl: kernel cache ${cache}/default points at fedcba9876543210, which is not a built kernel (it does not exist): run \`vmctl kernel build\``);
  // default pointing at the entry without vmlinux.
  rmSync(join(cache, "default"));
  symlinkSync("1111111111111111", join(cache, "default"));
  const empty = await vmctl(["kernel", "ls", "--json"], { cache });
  t.is(empty.code, 1);
  t.regex(oneLine(t, empty), /points at 1111111111111111, which is not a built kernel \(no vmlinux in it\)/);
  // default pointing out of the cache.
  rmSync(join(cache, "default"));
  symlinkSync("/etc", join(cache, "default"));
  t.regex(oneLine(t, await vmctl(["kernel", "ls"], { cache })), /points at "\/etc", not at a kernel of this cache/);
});

test("kernel ls on a cache that cannot be read: one line naming it, exit 1", async (t) => {
  const file = join(root, "not-a-dir");
  writeFileSync(file, "");
  const notDir = await vmctl(["kernel", "ls"], { cache: file });
  t.is(notDir.code, 1);
  t.is(oneLine(t, notDir), `vmctl: kernel cache ${file}: not a directory`);
  // Closed to the user: as nobody, a root-owned 0700 cache.
  const closed = freshCache();
  mkdirSync(closed, { mode: 0o700 });
  const denied = await vmctl(["kernel", "ls"], { cache: closed, bin: detachedCli(), asNobody: true });
  t.is(denied.code, 1, denied.stderr);
  t.is(oneLine(t, denied), `vmctl: kernel cache ${closed}: permission denied`);
});

test("kernel build failures: one readable line, exit 1, and nothing built", async (t) => {
  // The script itself fails (its cache cannot be made): its last word is the line.
  const file = join(root, "cache-is-a-file");
  writeFileSync(file, "");
  const failed = await vmctl(["kernel", "build"], { cache: join(file, "sub") });
  t.is(failed.code, 1);
  t.is(failed.stdout, "");
  const last = failed.stderr.trimEnd().split("\n").at(-1) ?? "";
  t.regex(last, /^vmctl: kernel build failed \(exit 1\): mkdir: cannot create directory .*: Not a directory$/);
  // A CLI outside any checkout: no script to run.
  const missing = await vmctl(["kernel", "build"], { cache: freshCache(), bin: detachedCli() });
  t.is(missing.code, 1);
  t.is(
    oneLine(t, missing),
    `vmctl: the kernel build script is not at ${join(root, "images", "kernel", "build")}: vmctl kernel build runs from a vmctl checkout (npm run build links it)`,
  );
  // ...where ls still lists, and says why it cannot tell the current kernel.
  const ls = await vmctl(["kernel", "ls"], { cache: freshCache(), bin: detachedCli() });
  t.is(ls.code, 0, ls.stderr);
  t.regex(ls.stderr, /^vmctl: note: cannot tell which kernel this checkout builds: the kernel build script is not at /);
});

/** Processes started with VMCTL_KERNEL_CACHE=cache in their environment (the build and all it runs). */
function processesOfCache(cache: string): number[] {
  const mark = Buffer.from(`VMCTL_KERNEL_CACHE=${cache}\0`);
  return readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid)
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/environ`).includes(mark);
      } catch {
        return false; // gone, or a kernel thread
      }
    })
    .map(Number);
}

test("kernel build stopped by a signal: the whole build stops with it (here: waiting on another build's lock)", async (t) => {
  t.timeout(60_000);
  const cache = freshCache();
  mkdirSync(cache);
  // Another build holds the lock: the script waits, and nothing is ever built here.
  const holder = spawn("flock", [join(cache, ".build.lock"), "sleep", "120"], { stdio: "ignore" });
  t.teardown(() => holder.kill("SIGKILL"));
  await new Promise((resolve) => setTimeout(resolve, 300));
  const env = { ...process.env, VMCTL_KERNEL_CACHE: cache };
  const cli = spawn(process.execPath, [bin, "kernel", "build"], { env, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  cli.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => cli.once("close", resolve));
  for (let i = 0; i < 200 && !stderr.includes("waiting for it"); i++) await new Promise((resolve) => setTimeout(resolve, 50));
  t.regex(stderr, /^kernel: another build holds .*\.build\.lock; waiting for it$/m);
  t.true(processesOfCache(cache).length >= 2, "the script and its flock wait run");
  cli.kill("SIGTERM");
  t.is(await exited, 1);
  t.is(stderr.trimEnd().split("\n").at(-1), "vmctl: kernel build stopped (SIGTERM); run it again to go on");
  for (let i = 0; i < 40 && processesOfCache(cache).length > 0; i++) await new Promise((resolve) => setTimeout(resolve, 50));
  t.deepEqual(processesOfCache(cache), [], "nothing of the build left running");
});

test("kernel usage errors: a missing or unknown verb, an unknown option", async (t) => {
  const bare = await vmctl(["kernel"]);
  t.is(bare.code, 2);
  t.is(bare.stdout, "");
  t.regex(bare.stderr, /^Usage: vmctl kernel /);
  t.regex(bare.stderr, /build .*\n.*\n\s+ls /s);
  const unknown = await vmctl(["kernel", "frob"]);
  t.is(unknown.code, 2);
  t.regex(oneLine(t, unknown), /^vmctl: unknown command 'frob'/);
  const option = await vmctl(["kernel", "ls", "--bogus"]);
  t.is(option.code, 2);
  t.regex(oneLine(t, option), /^vmctl: unknown option '--bogus'/);
});

test("the real cache's default is what the microvm target boots for a spec without a kernel", async (t) => {
  t.timeout(BUILD_WAIT_MS + 60_000);
  t.is((await buildReal()).code, 0);
  const { parseMicrovmSpec } = await import("vmctl-plugin-microvm");
  const spec = parseMicrovmSpec({}, { kernelCache: REAL_CACHE });
  t.is(spec.kernel, realpathSync(join(REAL_CACHE, "default", "vmlinux")));
});

test("doctor names the real cache's default kernel: its release and path", async (t) => {
  t.timeout(BUILD_WAIT_MS + 60_000);
  t.is((await buildReal()).code, 0);
  const key = readlinkSync(join(REAL_CACHE, "default"));
  const json = await vmctl(["doctor", "--json"]);
  t.is(json.code, 0, json.stderr);
  const report = JSON.parse(json.stdout) as { guestKernel: { present: boolean; key?: string; path?: string; release?: string } };
  t.like(report.guestKernel, { present: true, key, path: join(REAL_CACHE, key, "vmlinux") });
  t.regex(report.guestKernel.release ?? "", /^6\.1\./);
  const text = await vmctl(["doctor"]);
  t.true(
    text.stdout.split("\n").includes(`Guest kernel: ${report.guestKernel.release}, ${join(REAL_CACHE, key, "vmlinux")} (the default: microvm specs without a kernel boot it)`),
    text.stdout,
  );
});
