// Test helpers for copy-out: what an archive holds (parsed by node-tar, bodies hashed), and
// a directory tree's files as the same map, so a copy can be compared with its source.
import { createHash } from "node:crypto";
import { lstatSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { Parser, extract } from "tar";

export interface ArchivedEntry {
  readonly type: string;
  readonly linkpath?: string;
  readonly sha256?: string;
}

/** Every entry of the tar stream by path (directories end with "/"), file bodies hashed. */
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
          ...(type === "SymbolicLink" || type === "Link" ? { linkpath: entry.linkpath } : {}),
          ...(type === "File" || type === "OldFile" ? { sha256: hash.digest("hex") } : {}),
        });
      });
    },
  });
  await pipeline(Readable.from(stream), parser);
  return entries;
}

/** Unpacks the tar stream into `dir` (node-tar, strict). */
export async function unpackInto(stream: AsyncIterable<Uint8Array>, dir: string): Promise<void> {
  await pipeline(Readable.from(stream), extract({ cwd: dir, strict: true }));
}

/** A host tree as archiveEntries() would show it when packed under `name`. */
export function treeEntries(hostPath: string, name: string): Map<string, ArchivedEntry> {
  const out = new Map<string, ArchivedEntry>();
  const walk = (host: string, rel: string) => {
    const st = lstatSync(host);
    if (st.isSymbolicLink()) out.set(rel, { type: "SymbolicLink", linkpath: readlinkSync(host) });
    else if (st.isDirectory()) {
      out.set(`${rel}/`, { type: "Directory" });
      for (const child of readdirSync(host)) walk(join(host, child), `${rel}/${child}`);
    } else out.set(rel, { type: "File", sha256: sha256File(host) });
  };
  walk(hostPath, name);
  return out;
}

export function sha256File(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}
