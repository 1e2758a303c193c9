// Files out of an image VM (the contract's copyOut): while it runs, the agent's CopyOut
// tar stream, read at the caller's pace. The VM powers off after its workload and its
// disks go with the service, so the spec's copyOut paths are kept first: each one's tar
// written to `captured/<index>.tar` in the service dir, what became of each in
// `captured/index.json`, all of it removed by destroy(). After the exit only those are
// served.
import { createReadStream, createWriteStream, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
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
 * copyOut(path) after the VM's exit: the kept tar of a path given at run, NOT_FOUND for
 * one the guest did not have, FAILED_PRECONDITION for any other path, or for one that
 * could not be kept (why said).
 */
export async function* keptCopy(l: ServiceLayout, path: string, copyOut: readonly string[], serviceId: string): AsyncGenerator<Uint8Array> {
  const details = errorDetails(serviceId);
  const key = guestPathKey(path);
  if (!copyOut.includes(key)) {
    const given = copyOut.length === 0 ? "none were given" : `kept: ${copyOut.join(", ")}`;
    throw new VmctlError("FAILED_PRECONDITION", `${key}: the VM has powered off; only the paths given at run (--copy-out) are kept (${given})`, { details });
  }
  const entry = readKept(l)?.find((e) => e.path === key);
  if (entry === undefined) {
    throw new VmctlError("FAILED_PRECONDITION", `${key} was not kept: the VM ended without its workload ending first (stopped by force, failed or lost), so nothing was copied out of it`, { details });
  }
  if ("missing" in entry) throw new VmctlError("NOT_FOUND", `${key} was not in the VM when its workload ended (${entry.missing})`, { details });
  if ("failed" in entry) throw new VmctlError("FAILED_PRECONDITION", `${key} could not be kept when the workload ended: ${entry.failed}`, { details });
  for await (const chunk of createReadStream(join(l.capturedDir, entry.file))) yield chunk as Buffer;
}
