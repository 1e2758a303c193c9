// Files out of an image VM (the contract's copyOut): while it runs, the agent's CopyOut
// tar stream, read at the caller's pace. The VM powers off after its workload and its
// disks go with the service, so the spec's copyOut paths are kept first: each one's tar
// written to `captured/<index>.tar` in the service dir, what became of each in
// `captured/index.json`, all of it removed by destroy(). After the exit only those are
// served.
import { createReadStream, createWriteStream, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { join, posix } from "node:path";
import { Pack, Parser } from "tar";
import { pipeline } from "node:stream/promises";
import { VmctlError, type Logger, type ResourceLedger } from "@vmctl/core/contract";
import { writeAtomic } from "@vmctl/core/target-kit";
import type { AgentConnection } from "./agent/index.js";
import { errorDetails } from "./errors.js";
import { ledger, type ServiceLayout } from "./layout.js";
import { guestPathKey } from "./workspace-spec.js";

/** What became of one copyOut path when the workload ended. */
export type KeptPath =
  /** Its tar, a file in the captured dir. */
  | { path: string; file: string; bytes: number }
  /** Not in the guest: copyOut() of it is NOT_FOUND. */
  | { path: string; missing: string }
  /** The copy failed (the agent went away, the disk is full): copyOut() says why. */
  | { path: string; failed: string };

const INDEX_FILE = "index.json";

/**
 * Keeps each of `paths` (the workload has ended; the VM still runs): its tar streamed
 * from the agent into the captured dir (`.partial` until whole), then the index. A path
 * missing in the guest, or a copy that fails, is recorded and the next one tried: what
 * was kept is still worth having.
 */
export async function keepCopyOutPaths(agent: AgentConnection, paths: readonly string[], l: ServiceLayout, resources: ResourceLedger, log: Logger): Promise<KeptPath[]> {
  resources.intend(ledger.dir(l.capturedDir));
  mkdirSync(l.capturedDir, { recursive: true });
  const kept: KeptPath[] = [];
  for (const [i, path] of paths.entries()) {
    const file = `${i}.tar`;
    const partial = join(l.capturedDir, `${file}.partial`);
    try {
      // Opened here, not by the stream: an asynchronous open could make the file after a
      // copy refused at once had removed it.
      await pipeline(agent.copyOut(path), createWriteStream(partial, { fd: openSync(partial, "w") }));
      renameSync(partial, join(l.capturedDir, file));
      const bytes = statSync(join(l.capturedDir, file)).size;
      kept.push({ path, file, bytes });
      log.debug("kept a copyOut path of the VM", { path, bytes });
    } catch (err) {
      rmSync(partial, { force: true });
      const e = VmctlError.from(err);
      kept.push(e.code === "NOT_FOUND" ? { path, missing: e.message } : { path, failed: e.message });
      log.debug("could not keep a copyOut path of the VM", { path, error: e.message });
    }
  }
  writeAtomic(join(l.capturedDir, INDEX_FILE), `${JSON.stringify({ paths: kept }, null, 2)}\n`);
  return kept;
}

/** The index keepCopyOutPaths() wrote; undefined when nothing was kept (or it is unreadable). */
function readKept(l: ServiceLayout): KeptPath[] | undefined {
  try {
    const index = JSON.parse(readFileSync(join(l.capturedDir, INDEX_FILE), "utf8")) as { paths?: unknown };
    return Array.isArray(index.paths) ? (index.paths as KeptPath[]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * copyOut(path) after the VM's exit: the kept tar of a path given at run, or the part of
 * one under a path inside it (under its own name, as while running); NOT_FOUND for one
 * the guest did not have, FAILED_PRECONDITION for any other path, or for one that could
 * not be kept (why said).
 */
export async function* keptCopy(l: ServiceLayout, path: string, copyOut: readonly string[], serviceId: string): AsyncGenerator<Uint8Array> {
  const details = errorDetails(serviceId);
  const key = guestPathKey(path);
  // The path itself, else the nearest kept path holding it.
  const root = copyOut.includes(key) ? key : copyOut.filter((p) => key.startsWith(p === "/" ? "/" : `${p}/`)).sort((a, b) => b.length - a.length)[0];
  if (root === undefined) {
    const given = copyOut.length === 0 ? "none were given" : `kept: ${copyOut.join(", ")}`;
    throw new VmctlError("FAILED_PRECONDITION", `${key}: the VM has powered off; only the paths given at run (--copy-out) are kept, with what is under them (${given})`, { details });
  }
  const entry = readKept(l)?.find((e) => e.path === root);
  if (entry === undefined) {
    throw new VmctlError("FAILED_PRECONDITION", `${root} was not kept: the VM ended without its workload ending first (stopped by force, failed or lost), so nothing was copied out of it`, { details });
  }
  if ("missing" in entry) throw new VmctlError("NOT_FOUND", `${root} was not in the VM when its workload ended (${entry.missing})`, { details });
  if ("failed" in entry) throw new VmctlError("FAILED_PRECONDITION", `${root} could not be kept when the workload ended: ${entry.failed}`, { details });
  const file = join(l.capturedDir, entry.file);
  if (root === key) {
    for await (const chunk of createReadStream(file)) yield chunk as Buffer;
    return;
  }
  // The kept tar holds the root under its own name; the part asked for is re-rooted under its own.
  const inside = `${posix.basename(root)}/${key.slice(root.length).replace(/^\//, "")}`;
  let found = false;
  const held: Uint8Array[] = [];
  for await (const chunk of subtree(file, inside, posix.basename(key), () => (found = true))) {
    // Nothing but the archive's end until an entry matched: held back, so a missing path is an error, not an empty tar.
    if (!found) held.push(chunk);
    else {
      yield* held.splice(0);
      yield chunk;
    }
  }
  if (!found) throw new VmctlError("NOT_FOUND", `${key} was not in the VM when its workload ended (not in the kept ${root})`, { details });
}

/** The entries of the tar `file` at or under `prefix`, renamed to start with `name` instead, as a tar stream. */
function subtree(file: string, prefix: string, name: string, onMatch: () => void): AsyncIterable<Uint8Array> {
  const pack = new Pack({ portable: false });
  const parser = new Parser({
    strict: true,
    onReadEntry: (e) => {
      const p = e.path.replace(/\/+$/, "");
      if (p !== prefix && !p.startsWith(`${prefix}/`)) return e.resume();
      onMatch();
      e.path = `${name}${p.slice(prefix.length)}${e.type === "Directory" ? "/" : ""}`;
      pack.add(e);
    },
  });
  parser.on("end", () => pack.end());
  // A read or parse failure ends the pack with it: the reader sees the error.
  const failed = (err: unknown): void => void pack.emit("error", err);
  parser.on("error", failed);
  const source = createReadStream(file).on("error", failed);
  source.pipe(parser);
  return pack as unknown as AsyncIterable<Uint8Array>;
}
