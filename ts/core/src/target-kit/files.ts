import { renameSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";

const CHUNK_BYTES = 64 * 1024;

/** Writes `text` to a temp file and renames it over `path`, so a reader never sees half of it. */
export function writeAtomic(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

/**
 * The bytes of `path` from `offset` to its current end, in chunks; nothing when the file
 * does not exist. A follower calls it again from where it stopped once the file grows.
 */
export async function* readFrom(path: string, offset: number): AsyncGenerator<Uint8Array> {
  let handle;
  try {
    handle = await open(path, "r");
  } catch {
    return;
  }
  try {
    let position = offset;
    for (;;) {
      const buffer = new Uint8Array(CHUNK_BYTES);
      const { bytesRead } = await handle.read(buffer, 0, CHUNK_BYTES, position);
      if (bytesRead === 0) return;
      position += bytesRead;
      yield buffer.subarray(0, bytesRead);
    }
  } finally {
    await handle.close();
  }
}
