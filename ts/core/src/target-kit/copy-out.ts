// copyOut() for a container over a rootfs directory (oci, lxc): a path in the container as
// a tar stream, held under its own name (copying /src/out gives out/, out/a.txt...), read
// at the caller's pace. The path is resolved as the container sees it, and only inside it
// (copy-out-resolve.ts); then node-tar packs it from the directory holding it, following no
// symlink (the entry itself, if one, is archived as a link). node-tar is an optional peer,
// loaded on first use, so the kit keeps no hard runtime dependency.
// What is not closed: inside a packed directory node-tar walks by path (under the pinned
// directory holding the entry), so a RUNNING container that swaps a subdirectory for a
// symlink between node-tar's lstat and its open could still race it out (docker cp's
// CVE-2018-15664; docker pauses the container for the copy). After the exit nothing races.
import { constants } from "node:fs";
import { lstat, open, stat } from "node:fs/promises";
import { posix } from "node:path";
import type { BindMount } from "../contract/types.js";
import { VmctlError } from "../errors.js";
import { resolveInContainer, type ResolvedEntry } from "./copy-out-resolve.js";

export { MAX_SYMLINK_HOPS } from "./copy-out-resolve.js";

export const TAR_PACKAGE = "tar";
const READ_CHUNK_BYTES = 256 * 1024;
const READ_AHEAD_ENTRIES = 4;

export interface ContainerPath {
  /** The container's root filesystem directory on the host. */
  readonly rootfs: string;
  /** The spec's bind mounts: a path at or under a destination is read from its source. */
  readonly mounts: readonly BindMount[];
  /** Absolute in the container. */
  readonly path: string;
  /**
   * The container's init while it runs: its root is read through /proc (its tmpfs /tmp and
   * mounts exactly as it sees them) when that root is still `rootfs`; otherwise (gone,
   * another process by now) the rootfs and `mounts` are read as after an exit.
   */
  readonly pid?: number | undefined;
}

/** What the kit uses of node-tar: `create` without a file gives a pull-based stream. */
interface TarCreate {
  create(
    options: { cwd: string; portable: boolean; follow: boolean; maxReadSize: number; jobs: number; filter: () => boolean; onWriteEntry: (entry: TarEntry) => void },
    files: string[],
  ): TarStream;
}
interface TarEntry {
  path: string;
  type?: string;
  linkpath?: string;
}
interface TarStream extends AsyncIterable<Uint8Array> {
  on(event: "end" | "error", listener: (...args: unknown[]) => void): unknown;
  resume(): void;
  readonly emittedEnd: boolean;
}

/** The tar stream of `p.path` (see the file's head). NOT_FOUND naming the path when there is none. */
export async function* packContainerPath(p: ContainerPath): AsyncGenerator<Uint8Array> {
  const path = checkedPath(p.path);
  const tar = await loadTar();
  const live = p.pid === undefined ? undefined : await liveRoot(p.pid, p.rootfs);
  let entry: ResolvedEntry;
  try {
    entry = live ? await resolveInContainer(live.path, [], path, p.path) : await resolveInContainer(p.rootfs, p.mounts, path, p.path);
  } finally {
    // The walk holds its own descriptor of the root from here.
    await live?.close();
  }
  await refuseSpecialFile(entry, p.path);
  yield* packEntry(tar, entry, posix.basename(path));
}

/**
 * Only files, directories and symlinks are copied: a device, a socket or a FIFO has no
 * content a tar holds (node-tar would write an empty archive), so asking for one is a
 * clear refusal rather than a copy of nothing.
 */
async function refuseSpecialFile(entry: ResolvedEntry, shown: string): Promise<void> {
  const stats = await lstat(`${entry.dirPath}/${entry.name}`).catch(() => undefined);
  if (stats === undefined || stats.isFile() || stats.isDirectory() || stats.isSymbolicLink()) return;
  await entry.close();
  throw new VmctlError("INVALID_ARGUMENT", `${shown} is not a file, a directory or a symlink: there is nothing to copy`, { details: { field: "path" } });
}

/** Packs the resolved entry under `name`; closes its descriptors once node-tar is done with them. */
async function* packEntry(tar: TarCreate, entry: ResolvedEntry, name: string): AsyncGenerator<Uint8Array> {
  let abandoned = false;
  const rename = (p: string) => (p === entry.name || p.startsWith(`${entry.name}/`) ? name + p.slice(entry.name.length) : p);
  const pack = tar.create(
    {
      cwd: entry.dirPath,
      portable: true,
      follow: false,
      // node-tar reads ahead up to maxReadSize for each of `jobs` entries: keep that small.
      maxReadSize: READ_CHUNK_BYTES,
      jobs: READ_AHEAD_ENTRIES,
      // A reader that stops early: nothing more is opened, what is open is read out (below).
      filter: () => !abandoned,
      onWriteEntry: (e) => {
        e.path = rename(e.path);
        if (e.type === "Link" && e.linkpath !== undefined) e.linkpath = rename(e.linkpath);
      },
    },
    [entry.name],
  );
  const done = new Promise<void>((resolve) => {
    pack.on("end", () => resolve());
    pack.on("error", () => resolve());
  });
  void done.then(() => entry.close());
  try {
    for await (const chunk of pack) yield chunk;
  } catch (err) {
    throw VmctlError.from(err, `copy ${name}`);
  } finally {
    if (!pack.emittedEnd) {
      // Stopped early: node-tar has files open that only its end closes; let it run out.
      abandoned = true;
      pack.resume();
    }
  }
}

/** The path as asked: absolute, no NUL, normalised, not the root itself (it has no name to hold it under). */
function checkedPath(path: string): string {
  if (typeof path !== "string" || !path.startsWith("/") || path.includes("\0")) {
    throw new VmctlError("INVALID_ARGUMENT", `copy out: ${JSON.stringify(path)} is not an absolute path`, { details: { field: "path" } });
  }
  const normal = posix.normalize(path).replace(/\/+$/, "");
  if (normal === "") {
    throw new VmctlError("INVALID_ARGUMENT", "copy out: / has no name to hold it under; copy the directories under it", { details: { field: "path" } });
  }
  return normal;
}

/**
 * The running container's root, opened, when it is `rootfs` (same device and inode): a
 * pid reused by a process rooted elsewhere (the host) is never read through.
 */
async function liveRoot(pid: number, rootfs: string): Promise<{ path: string; close(): Promise<void> } | undefined> {
  let root;
  try {
    root = await open(`/proc/${pid}/root`, constants.O_RDONLY | constants.O_DIRECTORY);
  } catch {
    return undefined;
  }
  try {
    const [seen, expected] = await Promise.all([root.stat(), stat(rootfs)]);
    if (seen.dev === expected.dev && seen.ino === expected.ino) return { path: `/proc/self/fd/${root.fd}`, close: () => root.close() };
  } catch {
    // the rootfs is gone: nothing to compare with
  }
  await root.close();
  return undefined;
}

let tarModule: Promise<TarCreate> | undefined;

async function loadTar(specifier: string = TAR_PACKAGE): Promise<TarCreate> {
  tarModule ??= import(specifier).then((mod: unknown) => {
    if (typeof (mod as Partial<TarCreate>).create !== "function") throw new Error(`${specifier} has no create()`);
    return mod as TarCreate;
  });
  try {
    return await tarModule;
  } catch (err) {
    tarModule = undefined;
    throw new VmctlError("FAILED_PRECONDITION", `copy out needs the ${specifier} package, which cannot be loaded here: ${(err as Error).message}`);
  }
}
