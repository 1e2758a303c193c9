// A workspace for the copy tests (workspace-in, workload-copy), and a way to compare two
// trees: what a copy in and out must keep.
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";

export const MIB = 1024 * 1024;

/** Every entry under `root` by relative path: a file's sha256 and mode, a directory's mode, a symlink's target. */
export function tree(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      const stat = lstatSync(path);
      const mode = (stat.mode & 0o7777).toString(8);
      const at = relative(root, path);
      if (stat.isSymbolicLink()) out[at] = `symlink -> ${readlinkSync(path)}`;
      else if (stat.isDirectory()) {
        out[at] = `dir ${mode}`;
        walk(path);
      } else out[at] = `file ${createHash("sha256").update(readFileSync(path)).digest("hex")} ${mode}`;
    }
  };
  walk(root);
  return out;
}

/** A workspace with what trips tar writers up: non-ASCII and long names, an empty dir, a symlink, a hard link, a 5 MiB file, modes. */
export function makeWorkspace(source: string): void {
  mkdirSync(join(source, "日本語/ディレクトリ"), { recursive: true });
  mkdirSync(join(source, "empty"));
  mkdirSync(join(source, "private"), { mode: 0o700 });
  chmodSync(join(source, "private"), 0o700);
  writeFileSync(join(source, "héllo wörld.txt"), "grüße\n");
  writeFileSync(join(source, "日本語/ディレクトリ/ファイル 🎉.txt"), "こんにちは\n");
  writeFileSync(join(source, `${"long-name-".repeat(20)}.txt`), "a name over the 100 bytes of a ustar header\n");
  writeFileSync(join(source, "big.bin"), randomBytes(5 * MIB));
  writeFileSync(join(source, "run.sh"), "#!/bin/sh\necho hi\n", { mode: 0o755 });
  chmodSync(join(source, "run.sh"), 0o755);
  writeFileSync(join(source, "private/secret"), "s\n", { mode: 0o600 });
  chmodSync(join(source, "private/secret"), 0o600);
  symlinkSync("héllo wörld.txt", join(source, "link"));
  linkSync(join(source, "日本語/ディレクトリ/ファイル 🎉.txt"), join(source, "hard link.txt"));
}
