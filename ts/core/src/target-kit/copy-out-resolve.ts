// Where a path in a container is on the host, resolved as the container would (chroot-like)
// and never onto the host: a container may plant `/out -> /etc` or `../../..` to make a
// host-side reader read host files (the `docker cp` CVE family). The walk goes one
// component at a time through directory descriptors (/proc/self/fd/N/NAME, opened with
// O_NOFOLLOW), so a component swapped for a symlink after it was checked is refused rather
// than followed; a symlink met on the way restarts from the container's root (absolute) or
// from the directory holding it (relative); ".." never climbs above the root. A bind mount
// takes over where the walk reaches its destination, as in the container.
import { constants, realpathSync } from "node:fs";
import { lstat, open, readlink, type FileHandle } from "node:fs/promises";
import { posix } from "node:path";
import type { BindMount } from "../contract/types.js";
import { VmctlError } from "../errors.js";

/** Symlinks followed on the way before the path counts as a loop (Linux's own limit). */
export const MAX_SYMLINK_HOPS = 40;

const DIR_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY;

/** A directory open on the walk, and where it is in the container. */
interface Step {
  readonly dir: FileHandle;
  readonly at: string;
}

/** The final entry: `name` in the open directory `dir` (the caller closes it with close()). */
export interface ResolvedEntry {
  /** `/proc/self/fd/N`: the directory holding the entry, pinned by its descriptor. */
  readonly dirPath: string;
  /** The entry's name in that directory (a mount's source name when the path is its destination). */
  readonly name: string;
  close(): Promise<void>;
}

/** A host path reached through an open directory, looked up without trusting the path above it. */
export function inDir(dir: FileHandle, name: string): string {
  return `/proc/self/fd/${dir.fd}/${name}`;
}

/**
 * Resolves absolute `path` (already normalised, not "/") inside `root` with `mounts`
 * over it. NOT_FOUND when a component is missing or not a directory; INVALID_ARGUMENT
 * after MAX_SYMLINK_HOPS symlinks. The last component is not followed.
 */
export async function resolveInContainer(root: string, mounts: readonly BindMount[], path: string, asked = path): Promise<ResolvedEntry> {
  const opened: FileHandle[] = [];
  // `follow` only for the roots (the rootfs, a mount's source): host paths the spec gave.
  const openDir = async (hostPath: string, follow = false): Promise<FileHandle> => {
    const fh = await open(hostPath, follow ? DIR_FLAGS : DIR_FLAGS | constants.O_NOFOLLOW);
    opened.push(fh);
    return fh;
  };
  // The host's side of a mount is trusted (the spec's own path), so it is resolved as usual.
  const sourceOf = (mount: BindMount): string => {
    try {
      return realpathSync(mount.source);
    } catch (err) {
      throw missing(asked, err);
    }
  };
  const closeAll = async () => {
    await Promise.all(opened.map((fh) => fh.close().catch(() => undefined)));
  };
  try {
    const rootDir = await openDir(root, true).catch((err: unknown) => {
      throw new VmctlError("FAILED_PRECONDITION", `cannot copy ${asked}: the container's root ${root} cannot be opened`, { cause: err });
    });
    const rootStep: Step = { dir: rootDir, at: "/" };
    let stack: Step[] = [rootStep];
    const todo = path.split("/").filter(Boolean);
    let hops = 0;
    while (todo.length > 0) {
      const name = todo.shift()!;
      if (name === ".") continue;
      if (name === "..") {
        if (stack.length > 1) stack.pop();
        continue;
      }
      const here = stack[stack.length - 1]!;
      const at = posix.join(here.at, name);
      const mount = mountAt(mounts, at);
      if (todo.length === 0) {
        const entry = mount ? await mountEntry(sourceOf(mount), mount.destination, openDir) : { dir: here.dir, name };
        await lstat(inDir(entry.dir, entry.name)).catch((err: unknown) => {
          throw missing(asked, err);
        });
        return { dirPath: `/proc/self/fd/${entry.dir.fd}`, name: entry.name, close: closeAll };
      }
      if (mount) {
        stack.push({ dir: await openDir(sourceOf(mount), true).catch((err: unknown) => Promise.reject(missing(asked, err))), at });
        continue;
      }
      const hostPath = inDir(here.dir, name);
      const st = await lstat(hostPath).catch((err: unknown) => {
        throw missing(asked, err);
      });
      if (st.isSymbolicLink()) {
        if (++hops > MAX_SYMLINK_HOPS) {
          throw new VmctlError("INVALID_ARGUMENT", `${asked}: too many levels of symbolic links (more than ${MAX_SYMLINK_HOPS})`, { details: { field: "path" } });
        }
        const target = await readlink(hostPath);
        // Absolute: from the container's root, as chroot would; relative: from `here`.
        if (target.startsWith("/")) stack = [rootStep];
        todo.unshift(...target.split("/").filter(Boolean));
        continue;
      }
      if (!st.isDirectory()) throw missing(asked, Object.assign(new Error("not a directory"), { code: "ENOTDIR" }));
      // O_NOFOLLOW: swapped for a symlink since the lstat, it fails here instead of leading out.
      stack.push({ dir: await openDir(hostPath).catch((err: unknown) => Promise.reject(missing(asked, err))), at });
    }
    throw new VmctlError("INVALID_ARGUMENT", `${asked}: names no entry under the root`, { details: { field: "path" } });
  } catch (err) {
    await closeAll();
    throw err;
  }
}

/** The mount whose destination is exactly `at` (the last one listed wins, as it is mounted last). */
function mountAt(mounts: readonly BindMount[], at: string): BindMount | undefined {
  let found: BindMount | undefined;
  for (const m of mounts) if (posix.normalize(m.destination).replace(/\/+$/, "") === at) found = m;
  return found;
}

/** A mount's source as the final entry: its parent open, its own name. */
async function mountEntry(source: string, destination: string, openDir: (p: string, follow: boolean) => Promise<FileHandle>): Promise<{ dir: FileHandle; name: string }> {
  if (source === "/") throw new VmctlError("INVALID_ARGUMENT", `cannot copy a mount of the host's root (${destination})`, { details: { field: "path" } });
  return { dir: await openDir(posix.dirname(source), true), name: posix.basename(source) };
}

function missing(path: string, cause: unknown): VmctlError {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  if (code === "ENOENT" || code === "ENOTDIR" || code === "ELOOP") {
    return new VmctlError("NOT_FOUND", `no such file or directory: ${path}`, { cause, details: { field: "path" } });
  }
  return VmctlError.from(cause, `copy ${path}`);
}
