// The guest-kernel cache that images/kernel/build fills: where it is, which kernels it
// holds, which one is the default. The one reader of that layout: the microvm target
// (a spec without a kernel), `vmctl kernel ls|build` and `vmctl doctor` all ask here,
// so they cannot disagree about what "the default kernel" is.
//
//   <cache>/<key>/vmlinux, config, release, source-version   a finished kernel (key: 16 hex digits)
//   <cache>/default -> <key>                                  the latest build
//   <cache>/src, obj, .build.lock, <key>.tmp                  the build's scratch, never kernels
//
// images/kernel/build writes a key directory whole (built in <key>.tmp, then renamed),
// so anything else under a key-shaped name was put there by hand and is reported, not used.
import { lstatSync, readdirSync, readFileSync, readlinkSync, statSync, type Stats } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { VmctlError, type ErrorCode } from "@vmctl/core/contract";

/** Where images/kernel/build caches kernels unless VMCTL_KERNEL_CACHE says otherwise. */
export const DEFAULT_KERNEL_CACHE = "/var/cache/vmctl/kernel";
/** The name of the link to the default kernel's key directory. */
export const DEFAULT_LINK = "default";
/** What images/kernel/build names a kernel: the first 16 hex digits of a sha256. */
const KEY = /^[0-9a-f]{16}$/;

/** One built kernel in the cache. Plain JSON data (dates as ISO strings). */
export type CachedKernel = {
  readonly key: string;
  /** Absolute path of the ELF vmlinux, through the key directory (never through `default`). */
  readonly vmlinux: string;
  /** `make kernelrelease`, e.g. "6.1.0"; null when the file is missing. */
  readonly release: string | null;
  /** The linux-source package version it was built from; null when the file is missing. */
  readonly sourceVersion: string | null;
  readonly sizeBytes: number;
  /** When vmlinux was written. */
  readonly builtAt: string;
  /** `default` points at it. */
  readonly isDefault: boolean;
};

/** A key-shaped entry that is not a usable kernel, and why. */
export type IgnoredEntry = { readonly name: string; readonly reason: string };

/** What the cache holds. */
export type KernelCacheListing = {
  /** The cache directory (absolute). */
  readonly dir: string;
  /** False when the directory does not exist yet (nothing was ever built). */
  readonly exists: boolean;
  /** The key `default` points at, or null when there is no `default`. */
  readonly defaultKey: string | null;
  /** Newest first. */
  readonly kernels: readonly CachedKernel[];
  readonly ignored: readonly IgnoredEntry[];
};

/** The cache directory: `$VMCTL_KERNEL_CACHE` (made absolute: the daemon's cwd is not the user's), else the default. */
export function kernelCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env.VMCTL_KERNEL_CACHE;
  return dir ? resolve(dir) : DEFAULT_KERNEL_CACHE;
}

const ERRNO_KINDS: Readonly<Record<string, { code: ErrorCode; says: string }>> = {
  EACCES: { code: "PERMISSION_DENIED", says: "permission denied" },
  EPERM: { code: "PERMISSION_DENIED", says: "permission denied" },
  ENOTDIR: { code: "FAILED_PRECONDITION", says: "not a directory" },
  ELOOP: { code: "FAILED_PRECONDITION", says: "too many levels of symbolic links" },
};

/** A filesystem failure reading the cache as one readable VmctlError naming the path. */
function readFailure(path: string, err: unknown): VmctlError {
  const errno = (err as NodeJS.ErrnoException).code ?? "";
  const kind = ERRNO_KINDS[errno];
  const says = kind?.says ?? (err instanceof Error ? err.message : String(err));
  return new VmctlError(kind?.code ?? "INTERNAL", `kernel cache ${path}: ${says}`, { cause: err });
}

const isMissing = (err: unknown): boolean => (err as NodeJS.ErrnoException).code === "ENOENT";

/** stat() of `path`, undefined when it does not exist; other failures throw. */
function statOrUndefined(path: string, follow: boolean): Stats | undefined {
  try {
    return follow ? statSync(path) : lstatSync(path);
  } catch (err) {
    if (isMissing(err)) return undefined;
    throw readFailure(path, err);
  }
}

/** A one-line text file's content, null when the file does not exist. */
function lineOf(path: string): string | null {
  try {
    return readFileSync(path, "utf8").trim();
  } catch (err) {
    if (isMissing(err)) return null;
    throw readFailure(path, err);
  }
}

/** The kernel in `<dir>/<key>`, or why that is not one. */
function entry(dir: string, key: string, isDefault: boolean): CachedKernel | IgnoredEntry {
  const keyDir = join(dir, key);
  const dirStat = statOrUndefined(keyDir, false);
  if (dirStat === undefined) return { name: key, reason: "it does not exist" };
  if (!dirStat.isDirectory()) return { name: key, reason: "not a directory" };
  const vmlinux = join(keyDir, "vmlinux");
  const st = statOrUndefined(vmlinux, true);
  if (st === undefined) return { name: key, reason: "no vmlinux in it" };
  if (!st.isFile()) return { name: key, reason: "its vmlinux is not a regular file" };
  return {
    key,
    vmlinux,
    release: lineOf(join(keyDir, "release")),
    sourceVersion: lineOf(join(keyDir, "source-version")),
    sizeBytes: st.size,
    builtAt: st.mtime.toISOString(),
    isDefault,
  };
}

const isKernel = (e: CachedKernel | IgnoredEntry): e is CachedKernel => "vmlinux" in e;

/**
 * The kernel `<dir>/default` points at, null when there is no such link. A `default`
 * that is not a link to a key directory of this cache, or whose kernel is not there,
 * throws FAILED_PRECONDITION saying so: booting "the default" must never mean a guess.
 */
function defaultOf(dir: string): CachedKernel | null {
  const link = join(dir, DEFAULT_LINK);
  const st = statOrUndefined(link, false);
  if (st === undefined) return null;
  if (!st.isSymbolicLink()) {
    throw new VmctlError("FAILED_PRECONDITION", `kernel cache ${link} is not a symbolic link (images/kernel/build makes it one): remove it and run \`vmctl kernel build\``);
  }
  let target: string;
  try {
    target = readlinkSync(link);
  } catch (err) {
    throw readFailure(link, err);
  }
  const resolved = resolve(dir, target);
  const key = basename(resolved);
  if (dirname(resolved) !== dir || !KEY.test(key)) {
    throw new VmctlError("FAILED_PRECONDITION", `kernel cache ${link} points at ${JSON.stringify(target)}, not at a kernel of this cache: run \`vmctl kernel build\` to point it at one`);
  }
  const found = entry(dir, key, true);
  if (!isKernel(found)) {
    throw new VmctlError("FAILED_PRECONDITION", `kernel cache ${link} points at ${key}, which is not a built kernel (${found.reason}): run \`vmctl kernel build\``);
  }
  return found;
}

/** Every kernel in the cache, newest first. Throws VmctlError when the cache cannot be read or `default` is broken. */
export function listKernels(cache: string = kernelCacheDir()): KernelCacheListing {
  const dir = resolve(cache);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    if (isMissing(err)) return { dir, exists: false, defaultKey: null, kernels: [], ignored: [] };
    throw readFailure(dir, err);
  }
  const defaultKey = defaultOf(dir)?.key ?? null;
  const kernels: CachedKernel[] = [];
  const ignored: IgnoredEntry[] = [];
  // Only key-shaped names: src/, obj/, the lock and <key>.tmp are the build's, and a name
  // with spaces or newlines was never written by it.
  for (const name of names.filter((n) => KEY.test(n)).sort()) {
    const found = entry(dir, name, name === defaultKey);
    if (isKernel(found)) kernels.push(found);
    else ignored.push(found);
  }
  kernels.sort((a, b) => b.builtAt.localeCompare(a.builtAt) || a.key.localeCompare(b.key));
  return { dir, exists: true, defaultKey, kernels, ignored };
}

/** The default kernel, or undefined when none was built. Throws as {@link listKernels} does. */
export function defaultKernel(cache: string = kernelCacheDir()): CachedKernel | undefined {
  const dir = resolve(cache);
  // Not there at all: nothing was built yet. Anything else wrong with it throws below.
  const st = statOrUndefined(dir, true);
  if (st === undefined) return undefined;
  if (!st.isDirectory()) throw new VmctlError("FAILED_PRECONDITION", `kernel cache ${dir}: not a directory`);
  return defaultOf(dir) ?? undefined;
}

/** The kernel built under `key` (e.g. `images/kernel/build --key`), or undefined when there is none. */
export function findKernel(key: string, cache: string = kernelCacheDir()): CachedKernel | undefined {
  if (!KEY.test(key)) return undefined;
  const dir = resolve(cache);
  const found = entry(dir, key, false);
  if (!isKernel(found)) return undefined;
  // Marked as the default only if it is; a broken `default` does not hide a kernel asked for by key.
  let isDefault = false;
  try {
    isDefault = defaultOf(dir)?.key === key;
  } catch (err) {
    if (!(err instanceof VmctlError)) throw err;
  }
  return { ...found, isDefault };
}

/**
 * The default kernel's vmlinux for a spec that names none in `field`. FAILED_PRECONDITION
 * naming the field when there is none or the cache is unusable: the request is fine, the
 * host lacks the kernel, and the message says how to build it.
 */
export function requireDefaultKernel(dir: string = kernelCacheDir(), field = "kernel"): string {
  let found: CachedKernel | undefined;
  try {
    found = defaultKernel(dir);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new VmctlError("FAILED_PRECONDITION", `${field}: no kernel given, and the default one is unusable: ${why}`, { cause: err, details: { field } });
  }
  if (found === undefined) {
    throw new VmctlError(
      "FAILED_PRECONDITION",
      `${field}: no kernel given, and no default guest kernel is built in ${dir}: run \`vmctl kernel build\` (or give the kernel's path)`,
      { details: { field } },
    );
  }
  return found.vmlinux;
}
