// Files out of a service onto this host (`vmctl cp`, `vmctl run --copy-out`): vmctld's
// CopyOut tar stream is unpacked, as it arrives, into a staging directory beside the
// destination (node-tar, strict: an entry that would land outside it fails the copy),
// then moved into place, so a copy that fails half-way leaves the destination as it was.
// Where it goes follows cp(1): a destination that does not exist becomes the copy; an
// existing directory receives a directory's contents (merged, files replaced) or a file
// by its name; an existing file is replaced by a file.
import { lstat, mkdir, mkdtemp, readdir, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { VmctlClient } from "@vmctl/client";
import { CliError } from "../errors.js";

/** `PATH:DEST` of --copy-out (PATH in the service, DEST here; split at the first ':'). */
export interface CopyOutRequest {
  readonly path: string;
  readonly dest: string;
}

export function parseCopyOut(text: string, flag = "--copy-out"): CopyOutRequest {
  const colon = text.indexOf(":");
  const path = colon < 0 ? "" : text.slice(0, colon);
  const dest = colon < 0 ? "" : text.slice(colon + 1);
  if (!path.startsWith("/") || dest === "") throw new CliError(`${flag} ${JSON.stringify(text)}: expected /PATH/IN/SERVICE:DEST`, 2);
  return { path, dest };
}

/** Copies `path` of service `ref` to `dest` (relative to the current directory); resolves to where it landed. */
export async function copyOutTo(client: Pick<VmctlClient, "copyOut">, ref: string, path: string, dest: string): Promise<string> {
  const target = resolve(dest);
  const parent = dirname(target);
  await mkdir(parent, { recursive: true });
  const staging = await mkdtemp(join(parent, ".vmctl-copy-"));
  try {
    const tar = await import("tar");
    // Owned by whoever runs vmctl, like cp(1): the service's uids mean nothing here.
    await pipeline(Readable.from(client.copyOut(ref, path)), tar.x({ cwd: staging, strict: true, preserveOwner: false }));
    const [name, ...more] = await readdir(staging);
    if (name === undefined || more.length > 0) throw new CliError(`copying ${path} out of ${ref}: the archive did not hold one entry named for it`);
    return await place(join(staging, name), target);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** Moves `source` to `target` by cp(1)'s rule; returns where it went. */
async function place(source: string, target: string): Promise<string> {
  const existing = await stat(target).catch(() => undefined);
  if (existing === undefined) {
    await rename(source, target);
    return target;
  }
  const sourceIsDirectory = (await lstat(source)).isDirectory();
  if (existing.isDirectory() && sourceIsDirectory) {
    for (const entry of await readdir(source)) await place(join(source, entry), join(target, entry));
    return target;
  }
  if (existing.isDirectory()) return place(source, join(target, basename(source)));
  if (sourceIsDirectory) throw new CliError(`cannot copy a directory onto the file ${target}`);
  await rename(source, target);
  return target;
}
