#!/usr/bin/env node
// The vmctl command (built as CommonJS, dist/bin.cjs: it uses __dirname and module):
// loads the CommonJS CLI bundle (cli.cjs) through V8's code cache, and on demand the
// gRPC part (client.cjs, see load-heavy.ts) the same way, each with its own cache.
// Why: compiling the bundles afresh (1.7 MB together) is a fifth of a command's run time, and
// Node 20 has no module compile cache (module.enableCompileCache arrives in Node 22).
// Why not v8-compile-cache: it hashes the whole bundle with sha1 and loads crypto on
// every start, which gives back half of the gain (measured: -9 ms against -20 ms here);
// here the cache is keyed by the bundle's inode, size and mtime.
import {
  closeSync,
  constants as fsConstants,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import Module from "node:module";
import { join } from "node:path";
import { Script } from "node:vm";
import { provideImporter } from "./import-esm.js";
import { provideBundleLoader } from "./bundle-loader.js";

type Cli = typeof import("./program.js");
type ModuleInternals = typeof Module & { wrap(source: string): string; _nodeModulePaths(dir: string): string[] };
type LoadedModule = InstanceType<typeof Module> & { filename: string; paths: string[]; loaded: boolean };

// The user's own cache directory, never a shared one: compiled code read from a place
// another user can write would run as whoever runs vmctl (often root).
const cacheRoot = process.env.XDG_CACHE_HOME || (process.env.HOME ? join(process.env.HOME, ".cache") : undefined);
const cacheDir = cacheRoot === undefined ? undefined : join(cacheRoot, "vmctl", "compile-cache");

/** The cache directory is ours alone: a real directory (no symlink), owned by us, closed to others. */
function privateDir(dir: string): boolean {
  try {
    const st = lstatSync(dir);
    return st.isDirectory() && st.uid === process.getuid?.() && (st.mode & 0o077) === 0;
  } catch {
    return false;
  }
}

const loaded = new Map<string, unknown>();

/** dist/<name>.cjs, run once, its exports kept. */
function loadBundle(name: string): unknown {
  if (!loaded.has(name)) loaded.set(name, runBundle(name));
  return loaded.get(name);
}

function runBundle(file: string): unknown {
  const bundle = join(__dirname, file);
  const stat = statSync(bundle);
  const prefix = `${file.replace(/\.cjs$/, "")}-${stat.ino}-`;
  // V8 checks only the source length against the cache: the mtime catches a rebuild.
  const name = `${prefix}${stat.size}-${Math.trunc(stat.mtimeMs)}-${process.versions.v8}.bin`;
  const cacheFile = cacheDir === undefined ? undefined : join(cacheDir, name);
  let cachedData: Buffer | undefined;
  if (cacheDir !== undefined && cacheFile !== undefined && privateDir(cacheDir)) {
    try {
      cachedData = readFileSync(cacheFile);
    } catch {
      // first run after a build: compile, and write the cache on the way out
    }
  }
  const internals = Module as ModuleInternals;
  const script = new Script(internals.wrap(readFileSync(bundle, "utf8")), { filename: bundle, cachedData });
  const mod = new Module(bundle, module) as LoadedModule;
  mod.filename = bundle;
  mod.paths = internals._nodeModulePaths(__dirname);
  const wrapper = script.runInThisContext() as (...args: unknown[]) => void;
  wrapper(mod.exports, (id: string) => mod.require(id), mod, bundle, __dirname);
  mod.loaded = true;
  if (cacheDir !== undefined && cacheFile !== undefined && (cachedData === undefined || script.cachedDataRejected)) {
    // At exit, so the functions this command compiled lazily are in the cache too.
    process.once("exit", () => saveCache(script, cacheDir, cacheFile, prefix));
  }
  return mod.exports;
}

/** Best effort: a cache that cannot be written only costs the next start its speed. */
function saveCache(script: Script, dir: string, cacheFile: string, prefix: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (!privateDir(dir)) return;
    for (const old of readdirSync(dir)) if (old.startsWith(prefix)) unlinkSync(join(dir, old));
    const tmp = `${cacheFile}.${process.pid}`;
    // O_EXCL | O_NOFOLLOW: never write through a file or link someone else put there.
    const fd = openSync(tmp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW, 0o600);
    try {
      writeFileSync(fd, script.createCachedData());
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, cacheFile);
  } catch {
    // a read-only or full cache dir: the next start compiles again
  }
}

// import() from this real module, not from inside the vm.Script (see import-esm.ts).
provideImporter((specifier) => import(specifier));
provideBundleLoader(loadBundle);

/**
 * Exits once what was written to stdout and stderr has gone out. Writes to a pipe the
 * reader has not emptied yet stay queued, and process.exit drops them: `vmctl ps -a
 * --json | …` with 1,000 services printed 64 KiB of its 430 KiB.
 */
function exitWhenFlushed(code: number): void {
  process.stdout.write("", () => process.stderr.write("", () => process.exit(code)));
}

// Exit explicitly: `vmctl daemon` leaves watchers of still-running services behind
// after its graceful shutdown.
(loadBundle("cli.cjs") as Cli)
  .main(process.argv.slice(2))
  .then(exitWhenFlushed);
