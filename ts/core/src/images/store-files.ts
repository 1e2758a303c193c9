// The image store's files, as the native engine lays them out under `<storeDir>`:
//   blobs/sha256/<hex>   content-addressed, complete when present
//   disks/<hex>.ext4     the read-only base disk of the image with manifest digest sha256:<hex>
//   tmp/                 work in progress; anything here at start-up is garbage
//   layers/              reserved for the engine; never touched here
import { lstat, mkdir, readdir, rm } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";

export interface StoreLayout {
  readonly root: string;
  readonly blobs: string;
  readonly disks: string;
  readonly tmp: string;
}

export function storeLayout(storeDir: string): StoreLayout {
  const root = resolve(storeDir);
  return { root, blobs: join(root, "blobs", "sha256"), disks: join(root, "disks"), tmp: join(root, "tmp") };
}

/** The file of blob `sha256:<hex>`. */
export function blobPath(layout: StoreLayout, digest: string): string {
  return join(layout.blobs, digest.slice("sha256:".length));
}

/**
 * A blob as the engine lists it in PreparedImage.blobs, as a digest: `sha256:<hex>` as is,
 * a path to `blobs/sha256/<hex>` as its digest; undefined for anything else.
 */
export function blobDigest(layout: StoreLayout, entry: string): string | undefined {
  if (/^sha256:[0-9a-f]{64}$/.test(entry)) return entry;
  const path = resolve(layout.root, entry);
  const hex = basename(path);
  return dirname(path) === layout.blobs && /^[0-9a-f]{64}$/.test(hex) ? `sha256:${hex}` : undefined;
}

/** Names in a directory; none when it does not exist. */
export async function entries(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
}

/** Bytes a file or tree takes on disk (allocated blocks: a sparse disk counts what it holds). */
export async function allocatedBytes(path: string): Promise<number> {
  let stat;
  try {
    stat = await lstat(path);
  } catch {
    return 0;
  }
  if (!stat.isDirectory()) return stat.blocks * 512;
  let total = stat.blocks * 512;
  for (const entry of await entries(path)) total += await allocatedBytes(join(path, entry));
  return total;
}

/** Removes a file or tree; returns the bytes it took (0 when it was not there). */
export async function removePath(path: string): Promise<number> {
  const bytes = await allocatedBytes(path);
  await rm(path, { recursive: true, force: true });
  return bytes;
}

export async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw err;
  }
}

/** The store's root, private to the daemon (specs and images may hold secrets). */
export async function makeStoreDir(layout: StoreLayout): Promise<void> {
  await mkdir(layout.root, { recursive: true, mode: 0o700 });
}
