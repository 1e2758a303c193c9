// The kernel cache's reader on caches laid out in temp dirs the way images/kernel/build
// lays them out, and on the ways a cache goes wrong by hand.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { VmctlError } from "@vmctl/core/contract";
import { DEFAULT_KERNEL_CACHE, defaultKernel, findKernel, kernelCacheDir, listKernels, requireDefaultKernel } from "./kernel-cache.js";

const root = mkdtempSync(join(tmpdir(), "vmctl-kcache-"));
test.after.always(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshDir = (): string => join(root, `c${n++}`);

/** A finished kernel as the build script leaves it. */
function builtKernel(cache: string, key: string, release: string, mtime: Date): string {
  const dir = join(cache, key);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "vmlinux"), Buffer.alloc(3 * 1024 * 1024, 1));
  writeFileSync(join(dir, "config"), "CONFIG_64BIT=y\n");
  writeFileSync(join(dir, "release"), `${release}\n`);
  writeFileSync(join(dir, "source-version"), "6.1.192-3\n");
  utimesSync(join(dir, "vmlinux"), mtime, mtime);
  return join(dir, "vmlinux");
}

function preconditionOf(t: import("ava").ExecutionContext, fn: () => unknown): VmctlError | undefined {
  return t.throws(fn, { instanceOf: VmctlError }) ?? undefined;
}

test("the cache dir: $VMCTL_KERNEL_CACHE made absolute, else /var/cache/vmctl/kernel", (t) => {
  t.is(kernelCacheDir({}), DEFAULT_KERNEL_CACHE);
  t.is(kernelCacheDir({ VMCTL_KERNEL_CACHE: "" }), DEFAULT_KERNEL_CACHE);
  t.is(kernelCacheDir({ VMCTL_KERNEL_CACHE: "/x/y" }), "/x/y");
  t.is(kernelCacheDir({ VMCTL_KERNEL_CACHE: "rel" }), join(process.cwd(), "rel"));
});

test("a cache never built: empty listing, no default, and a precondition error naming kernel and the fix", (t) => {
  const cache = freshDir();
  t.deepEqual(listKernels(cache), { dir: cache, exists: false, defaultKey: null, kernels: [], ignored: [] });
  t.is(defaultKernel(cache), undefined);
  const err = preconditionOf(t, () => requireDefaultKernel(cache));
  t.is(err?.code, "FAILED_PRECONDITION");
  t.is(err?.details.field, "kernel");
  t.regex(err?.message ?? "", /^kernel: no kernel given, and no default guest kernel is built in .*: run `vmctl kernel build`/);
  // Only the build's scratch (an interrupted first build): still nothing.
  mkdirSync(join(cache, "src", "6.1.192-3"), { recursive: true });
  mkdirSync(join(cache, "obj", "6.1.192-3"), { recursive: true });
  writeFileSync(join(cache, ".build.lock"), "");
  t.deepEqual(listKernels(cache), { dir: cache, exists: true, defaultKey: null, kernels: [], ignored: [] });
  t.is(requireDefaultKernel.length, 0, "both parameters have defaults");
});

test("built kernels are listed newest first; default is the one the link names, by its key path", (t) => {
  const cache = freshDir();
  const older = builtKernel(cache, "00000000000000aa", "6.1.0", new Date("2026-12-01T10:00:00Z"));
  const newer = builtKernel(cache, "00000000000000bb", "6.1.0-vmctl", new Date("2026-12-06T06:30:00Z"));
  symlinkSync("00000000000000aa", join(cache, "default"));
  const listing = listKernels(cache);
  t.is(listing.defaultKey, "00000000000000aa");
  t.deepEqual(listing.ignored, []);
  t.deepEqual(
    listing.kernels.map((k) => [k.key, k.release, k.sourceVersion, k.sizeBytes, k.builtAt, k.isDefault, k.vmlinux]),
    [
      ["00000000000000bb", "6.1.0-vmctl", "6.1.192-3", 3 * 1024 * 1024, "2026-12-06T06:30:00.000Z", false, newer],
      ["00000000000000aa", "6.1.0", "6.1.192-3", 3 * 1024 * 1024, "2026-12-01T10:00:00.000Z", true, older],
    ],
  );
  t.is(defaultKernel(cache)?.vmlinux, older);
  // The path goes through the key directory, never through `default` (which a later build moves).
  t.is(requireDefaultKernel(cache), older);
  // The release file missing (a hand-made entry): listed, release unknown.
  rmSync(join(cache, "00000000000000bb", "release"));
  t.is(listKernels(cache).kernels[0]?.release, null);
});

test("hostile entries: weird names, entries without a vmlinux and files under key names are not kernels", (t) => {
  const cache = freshDir();
  const good = builtKernel(cache, "0123456789abcdef", "6.1.0", new Date("2026-12-06T06:00:00Z"));
  symlinkSync("0123456789abcdef", join(cache, "default"));
  for (const weird of ["with space", "new\nline", "0123456789ABCDEF", "0123456789abcdef.tmp", "-rf", "ü"]) {
    mkdirSync(join(cache, weird));
    writeFileSync(join(cache, weird, "vmlinux"), "not ours");
  }
  mkdirSync(join(cache, "1111111111111111")); // no vmlinux
  mkdirSync(join(cache, "2222222222222222", "vmlinux"), { recursive: true }); // vmlinux a directory
  writeFileSync(join(cache, "3333333333333333"), "a file"); // not a directory
  symlinkSync("/nonexistent", join(cache, "4444444444444444")); // a dangling link
  const listing = listKernels(cache);
  t.deepEqual(listing.kernels.map((k) => k.vmlinux), [good]);
  t.deepEqual(listing.ignored, [
    { name: "1111111111111111", reason: "no vmlinux in it" },
    { name: "2222222222222222", reason: "its vmlinux is not a regular file" },
    { name: "3333333333333333", reason: "not a directory" },
    { name: "4444444444444444", reason: "not a directory" },
  ]);
  t.is(requireDefaultKernel(cache), good);
});

test("a broken default is an error saying what is wrong and how to fix it, never a guess", (t) => {
  const cases: [string, (cache: string) => void, RegExp][] = [
    ["dangling", (c) => symlinkSync("00000000000000ff", join(c, "default")), /points at 00000000000000ff, which is not a built kernel \(it does not exist\): run `vmctl kernel build`/],
    ["to a dir without vmlinux", (c) => { mkdirSync(join(c, "00000000000000ee")); symlinkSync("00000000000000ee", join(c, "default")); }, /points at 00000000000000ee, which is not a built kernel \(no vmlinux in it\)/],
    ["outside the cache", (c) => symlinkSync("/boot", join(c, "default")), /points at "\/boot", not at a kernel of this cache: run `vmctl kernel build`/],
    ["to a weird name", (c) => { mkdirSync(join(c, "x y")); writeFileSync(join(c, "x y", "vmlinux"), ""); symlinkSync("x y", join(c, "default")); }, /points at "x y", not at a kernel of this cache/],
    ["to itself", (c) => symlinkSync("default", join(c, "default")), /points at "default", not at a kernel of this cache/],
    ["a directory", (c) => mkdirSync(join(c, "default")), /default is not a symbolic link .*: remove it and run `vmctl kernel build`/],
  ];
  for (const [what, make, message] of cases) {
    const cache = freshDir();
    mkdirSync(cache);
    builtKernel(cache, "0123456789abcdef", "6.1.0", new Date());
    make(cache);
    const listed = preconditionOf(t, () => listKernels(cache));
    t.is(listed?.code, "FAILED_PRECONDITION", what);
    t.regex(listed?.message ?? "", message, what);
    t.false((listed?.message ?? "").includes("\n"), `${what}: one line`);
    t.is(preconditionOf(t, () => defaultKernel(cache))?.message, listed?.message, what);
    // For a spec without a kernel: the same words, under the field, as a precondition.
    const spec = preconditionOf(t, () => requireDefaultKernel(cache));
    t.is(spec?.code, "FAILED_PRECONDITION", what);
    t.is(spec?.details.field, "kernel", what);
    t.regex(spec?.message ?? "", /^kernel: no kernel given, and the default one is unusable: kernel cache /, what);
  }
});

test("a cache path that is not a directory: one line naming it", (t) => {
  const file = join(root, "a-file");
  writeFileSync(file, "");
  const listed = preconditionOf(t, () => listKernels(file));
  t.is(listed?.code, "FAILED_PRECONDITION");
  t.is(listed?.message, `kernel cache ${file}: not a directory`);
  t.is(preconditionOf(t, () => defaultKernel(file))?.message, `kernel cache ${file}: not a directory`);
  t.is(preconditionOf(t, () => requireDefaultKernel(file))?.details.field, "kernel");
  // Below a file: ENOTDIR on the way.
  t.is(preconditionOf(t, () => listKernels(join(file, "sub")))?.message, `kernel cache ${join(file, "sub")}: not a directory`);
});

test("findKernel: a kernel by its key, marked default only when it is; a broken default does not hide it", (t) => {
  const cache = freshDir();
  const a = builtKernel(cache, "00000000000000aa", "6.1.0", new Date("2026-12-01T10:00:00Z"));
  builtKernel(cache, "00000000000000bb", "6.1.0", new Date("2026-12-02T10:00:00Z"));
  symlinkSync("00000000000000bb", join(cache, "default"));
  t.like(findKernel("00000000000000aa", cache), { vmlinux: a, isDefault: false, release: "6.1.0" });
  t.like(findKernel("00000000000000bb", cache), { isDefault: true });
  t.is(findKernel("00000000000000cc", cache), undefined);
  t.is(findKernel("../../etc", cache), undefined);
  t.is(findKernel("00000000000000aa", freshDir()), undefined);
  rmSync(join(cache, "default"));
  symlinkSync("nowhere", join(cache, "default"));
  t.like(findKernel("00000000000000aa", cache), { vmlinux: a, isDefault: false });
});
