import { readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
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

/** The non-negative integer a pid or exit-status file holds ("123\n"), or undefined when it is missing or holds anything else. */
export function readIntFile(path: string): number | undefined {
  try {
    const text = readFileSync(path, "utf8").trim();
    return /^\d+$/.test(text) ? Number(text) : undefined;
  } catch {
    return undefined;
  }
}

/** The JSON a state file holds, or undefined when it is missing or not JSON (the caller knows its shape). */
export function readJsonFile<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as T;
  } catch {
    return undefined;
  }
}

/** When `path` was last written, or undefined when it does not exist. */
export function mtimeOf(path: string): Date | undefined {
  try {
    return statSync(path).mtime;
  } catch {
    return undefined;
  }
}

/** `path` exists and is a directory. */
export function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
