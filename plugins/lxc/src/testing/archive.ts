// What a copyOut() stream holds: every entry by path (directories end with "/"), file
// bodies hashed, parsed by node-tar (strict), so tests compare it with sha256sum's view.
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { Parser } from "tar";

export interface ArchivedEntry {
  readonly type: string;
  readonly linkpath?: string;
  readonly sha256?: string;
}

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

/** `sha256sum` output (HASH  PATH lines) as a map from path to hash. */
export function sha256sums(output: string): Map<string, string> {
  const sums = new Map<string, string>();
  for (const line of output.split("\n")) {
    const m = /^([0-9a-f]{64}) {2}(.+)$/.exec(line);
    if (m) sums.set(m[2]!, m[1]!);
  }
  return sums;
}

/** The code of the VmctlError the stream fails with ("OK" when it does not fail). */
export async function failureOf(stream: AsyncIterable<Uint8Array>): Promise<{ code: string; message: string }> {
  try {
    await archiveEntries(stream);
    return { code: "OK", message: "" };
  } catch (err) {
    const e = err as { code?: unknown; message?: unknown };
    return { code: String(e.code), message: String(e.message) };
  }
}
