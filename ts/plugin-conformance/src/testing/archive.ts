// Archives and trees, for copy tests (the kit's capabilities/copy check and plugin
// authors' own tests): what a copyOut() tar holds, parsed strictly by node-tar; a tar
// unpacked into a directory; a digest of a tree (path → sha256 / symlink target / dir),
// computed here or printed by a shell inside a service, so the two can be compared.
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, posix, relative } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { Parser, x as untar } from "tar";

export const MIB = 1024 * 1024;

/** One entry of an archive: node-tar's type ("File", "Directory", "SymbolicLink"...), a link's target, a file's sha256. */
export interface ArchivedEntry {
  readonly type: string;
  readonly linkpath?: string;
  readonly sha256?: string;
}

/** Every entry of a tar stream by its path as written (directories usually end with "/"), file bodies hashed. */
export async function archiveEntries(stream: AsyncIterable<Uint8Array>): Promise<Map<string, ArchivedEntry>> {
  const entries = new Map<string, ArchivedEntry>();
  const parser = new Parser({
    strict: true,
    onReadEntry: (entry) => {
      const hash = createHash("sha256");
      entry.on("data", (chunk: Buffer) => hash.update(chunk));
      entry.on("end", () => {
        const type = entry.type;
        entries.set(entry.path, {
          type,
          ...(type === "SymbolicLink" ? { linkpath: entry.linkpath } : {}),
          ...(type === "File" ? { sha256: hash.digest("hex") } : {}),
        });
      });
    },
  });
  await pipeline(Readable.from(stream), parser);
  return entries;
}

/** The code and message of the error a stream fails with while read whole ("OK" when it does not fail). */
export async function failureOf(stream: AsyncIterable<Uint8Array>): Promise<{ code: string; message: string }> {
  try {
    await archiveEntries(stream);
    return { code: "OK", message: "" };
  } catch (err) {
    const e = err as { code?: unknown; message?: unknown };
    return { code: String(e.code), message: String(e.message) };
  }
}

/** `sha256sum` output (HASH  PATH lines) as a map from path to hash. */
export function sha256sums(output: string): Map<string, string> {
  const sums = new Map<string, string>();
  for (const line of output.split("\n")) {
    const m = /^([0-9a-f]{64}) {2}(.+)$/.exec(line);
    if (m) sums.set(m[2]!, m[1]!);
  }
  return sums;
}

/** Unpacks a tar stream into `dir` with node-tar, strictly (as `vmctl cp` does); returns the names then in `dir`, sorted. */
export async function unpack(archive: AsyncIterable<Uint8Array>, dir: string): Promise<string[]> {
  await pipeline(Readable.from(archive), untar({ cwd: dir, strict: true, preserveOwner: false }));
  return readdirSync(dir).sort();
}

/** Unpacks a tar stream into a new directory under `parent` (default the system temp dir); returns that directory. */
export async function unpackToTemp(archive: AsyncIterable<Uint8Array>, parent = tmpdir(), prefix = "vmctl-unpacked-"): Promise<string> {
  const dir = mkdtempSync(join(parent, prefix));
  await unpack(archive, dir);
  return dir;
}

/**
 * Every entry under `root` by path relative to it: `"dir"`, `"file <sha256>"`,
 * `"symlink -> <target>"`; with `modes`, a dir's and a file's permission bits (octal) follow.
 */
export function treeDigest(root: string, options: { modes?: boolean } = {}): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      const stat = lstatSync(path);
      const mode = options.modes ? ` ${(stat.mode & 0o7777).toString(8)}` : "";
      const at = relative(root, path);
      if (stat.isSymbolicLink()) out[at] = `symlink -> ${readlinkSync(path)}`;
      else if (stat.isDirectory()) {
        out[at] = `dir${mode}`;
        walk(path);
      } else out[at] = `file ${createHash("sha256").update(readFileSync(path)).digest("hex")}${mode}`;
    }
  };
  walk(root);
  return sortedByPath(out);
}

/** The same record with its keys in code-point order (as parseTreeDigest gives them). */
function sortedByPath(digest: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(digest).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** `s` quoted for a POSIX shell. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

const DIGEST_END = "tree-digest-end";

/**
 * POSIX shell that prints the digest of `path` (absolute) as a service sees it, its entries
 * named from `path`'s own name (as copyOut holds them): parse it with `parseTreeDigest`,
 * compare it with `treeDigest` of the unpacked copy. Needs find, readlink and sha256sum,
 * each run as `tool` + name (`tool` "busybox " where only busybox itself is on PATH).
 */
export function treeDigestScript(path: string, tool = ""): string {
  return [
    `cd ${shellQuote(posix.dirname(path))}`,
    `${tool}find ${shellQuote(posix.basename(path))} | while IFS= read -r p; do`,
    `  if [ -L "$p" ]; then printf '%s\\tsymlink -> %s\\n' "$p" "$(${tool}readlink "$p")";`,
    `  elif [ -d "$p" ]; then printf '%s\\tdir\\n' "$p";`,
    `  else set -- $(${tool}sha256sum "$p"); printf '%s\\tfile %s\\n' "$p" "$1"; fi`,
    "done",
    `echo ${DIGEST_END}`,
  ].join("\n");
}

/** The digest a `treeDigestScript` printed (the rest of `output` ignored); throws when it did not finish. */
export function parseTreeDigest(output: string): Record<string, string> {
  const end = output.indexOf(DIGEST_END);
  if (end < 0) throw new Error(`no tree digest in ${JSON.stringify(output.slice(0, 500))}`);
  const lines = output.slice(0, end).split("\n").filter((l) => l.includes("\t"));
  return sortedByPath(Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf("\t")), l.slice(l.indexOf("\t") + 1)])));
}

/**
 * A workspace under `dir` (made) with what trips tar writers up: non-ASCII and long names,
 * an empty dir, a symlink, a hard link, a 5 MiB random file, modes (0700, 0600, 0755).
 */
export function makeWorkspace(dir: string): void {
  mkdirSync(join(dir, "日本語/ディレクトリ"), { recursive: true });
  mkdirSync(join(dir, "empty"));
  mkdirSync(join(dir, "private"), { mode: 0o700 });
  chmodSync(join(dir, "private"), 0o700);
  writeFileSync(join(dir, "héllo wörld.txt"), "grüße\n");
  writeFileSync(join(dir, "日本語/ディレクトリ/ファイル 🎉.txt"), "こんにちは\n");
  writeFileSync(join(dir, `${"long-name-".repeat(20)}.txt`), "a name over the 100 bytes of a ustar header\n");
  writeFileSync(join(dir, "big.bin"), randomBytes(5 * MIB));
  writeFileSync(join(dir, "run.sh"), "#!/bin/sh\necho hi\n", { mode: 0o755 });
  chmodSync(join(dir, "run.sh"), 0o755);
  writeFileSync(join(dir, "private/secret"), "s\n", { mode: 0o600 });
  chmodSync(join(dir, "private/secret"), 0o600);
  symlinkSync("héllo wörld.txt", join(dir, "link"));
  linkSync(join(dir, "日本語/ディレクトリ/ファイル 🎉.txt"), join(dir, "hard link.txt"));
}
