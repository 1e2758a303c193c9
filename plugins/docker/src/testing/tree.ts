// A tree of files made inside a container and the same tree unpacked on this host, each
// described as a manifest (one line per entry: its type, path, and content hash or link
// target), so a copy out can be checked entry by entry against what the container saw.
import { createHash } from "node:crypto";
import { lstatSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { x as untar } from "tar";

/** Bytes of the random file in the tree. */
export const BIG_FILE_BYTES = 5 * 1024 * 1024;
export const UNICODE_NAME = "ünïcødé-名前-🙂.txt";

/**
 * Shell (busybox: the test image links only a few applets) that makes /out: a small file,
 * one with a Unicode name, nested dirs, an empty dir, a relative symlink, and 5 MiB of
 * random bytes.
 */
export const MAKE_TREE = [
  "b=busybox",
  "$b mkdir -p /out/sub/deep /out/empty",
  "echo hello > /out/a.txt",
  `echo unicode > '/out/${UNICODE_NAME}'`,
  "printf 'no newline' > /out/sub/deep/leaf",
  "$b ln -s ../a.txt /out/sub/link",
  `$b head -c ${BIG_FILE_BYTES} /dev/urandom > /out/big.bin`,
].join("; ");

/**
 * Shell that prints the manifest of /out as the container sees it: `d PATH`, `l PATH TARGET`,
 * `f PATH SHA256` (sha256sum run inside the container), then a line "manifest-end".
 */
export const PRINT_MANIFEST = [
  "b=busybox",
  "cd /",
  "$b find out | while IFS= read -r p; do",
  '  if [ -L "$p" ]; then echo "l $p $($b readlink "$p")";',
  '  elif [ -d "$p" ]; then echo "d $p";',
  '  else echo "f $p $($b sha256sum "$p" | $b cut -d " " -f 1)"; fi',
  "done",
  "echo manifest-end",
].join("\n");

/** The manifest lines of a PRINT_MANIFEST output, sorted. */
export function manifestOf(output: string): string[] {
  const end = output.indexOf("manifest-end");
  if (end < 0) throw new Error(`no manifest in ${JSON.stringify(output.slice(0, 500))}`);
  return output.slice(0, end).split("\n").filter((l) => l !== "").sort();
}

/** The same manifest for `name` under `root` on this host (sha256 computed here). */
export function hostManifest(root: string, name: string): string[] {
  const lines: string[] = [];
  const walk = (rel: string): void => {
    const abs = join(root, rel);
    const st = lstatSync(abs);
    if (st.isSymbolicLink()) lines.push(`l ${rel} ${readlinkSync(abs)}`);
    else if (st.isDirectory()) {
      lines.push(`d ${rel}`);
      for (const entry of readdirSync(abs)) walk(`${rel}/${entry}`);
    } else lines.push(`f ${rel} ${createHash("sha256").update(readFileSync(abs)).digest("hex")}`);
  };
  walk(name);
  return lines.sort();
}

/** Unpacks a tar stream into `dir` with node-tar, strictly (as `vmctl cp` does). */
export async function unpack(archive: AsyncIterable<Uint8Array>, dir: string): Promise<void> {
  await pipeline(Readable.from(archive), untar({ cwd: dir, strict: true, preserveOwner: false }));
}
