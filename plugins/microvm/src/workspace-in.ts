// The spec's mounts into the guest, before the workload starts: each host source packed
// by node-tar as the agent's CopyIn reads it (a tar stream, never a whole archive in
// memory) and unpacked by the agent. A VM cannot bind a host path, so this is a copy: what
// the workload changes stays in the VM (copyOut brings results back) and `readOnly` means
// nothing more than that.
import { realpathSync, statSync } from "node:fs";
import { basename, dirname, posix } from "node:path";
import { PassThrough, type Readable } from "node:stream";
import { create as packTar, type Pack } from "tar";
import { VmctlError, type BindMount, type ErrorCode, type Logger } from "@vmctl/core/contract";
import type { AgentConnection } from "./agent/index.js";
import { errorDetails } from "./errors.js";

/** How much of a file node-tar reads at once (its default, 16 MiB, is more than a copy needs in memory). */
const READ_BYTES = 256 * 1024;

const TRANSPORT_CODES: ReadonlySet<ErrorCode> = new Set(["UNAVAILABLE", "CANCELLED", "DEADLINE_EXCEEDED"]);

/** One mount as the agent's CopyIn takes it: a directory to unpack into, and the tar to unpack. */
export interface MountCopy {
  /** The guest directory the tar is unpacked into. */
  readonly into: string;
  readonly tar: Readable;
}

/**
 * The tar of `mount.source` and where the agent unpacks it: a directory's contents go
 * into `destination` (made if missing); a file lands at `destination`, packed under the
 * destination's name and unpacked into its parent. A source that is a symlink is followed
 * (as a bind mount would); symlinks inside a directory are kept as symlinks. Owners,
 * modes and mtimes are kept (the agent, root in the guest, restores them).
 */
export function packMount(mount: BindMount, log: Logger): MountCopy {
  const source = realpathSync(mount.source);
  const onwarn = (code: string, message: string) => log.warn("packing a mount for the VM", { source, code, message });
  if (statSync(source).isDirectory()) {
    return { into: mount.destination, tar: streamOf(packTar({ cwd: source, onwarn, maxReadSize: READ_BYTES }, ["."])) };
  }
  const name = posix.basename(mount.destination);
  // The archive names the file as the destination does, whatever the source is called.
  const rename = (entry: { path: string }): void => {
    entry.path = name;
  };
  return { into: posix.dirname(mount.destination), tar: streamOf(packTar({ cwd: dirname(source), onwarn, maxReadSize: READ_BYTES, onWriteEntry: rename }, [basename(source)])) };
}

/**
 * node-tar's Pack as a Node stream: its failure (a file unreadable or gone) becomes the
 * stream's, so the reader sees it whenever it happens, and the Pack stops with the stream
 * (the agent refused, the copy was cancelled). Piped with backpressure: Pack reads files
 * only as the agent takes the bytes.
 */
function streamOf(pack: Pack): Readable {
  const out = new PassThrough();
  pack.on("error", (err: unknown) => out.destroy(err instanceof Error ? err : new Error(String(err))));
  out.on("close", () => {
    if (!out.readableEnded) pack.destroy();
  });
  pack.pipe(out);
  return out;
}

/**
 * Every mount into the guest, in order (a later one may fill a directory an earlier one
 * made). A failure names the mount (`spec.mounts[i]`) with the agent's or the host's
 * reason; the caller fails the start.
 */
export async function copyMountsIn(agent: AgentConnection, mounts: readonly BindMount[], serviceId: string, log: Logger): Promise<void> {
  for (const [i, mount] of mounts.entries()) {
    const field = `spec.mounts[${i}]`;
    const started = Date.now();
    try {
      const { into, tar } = packMount(mount, log);
      const copied = await agent.copyIn(into, tar);
      log.debug("copied a mount into the VM", { serviceId, mount: i, source: mount.source, destination: mount.destination, entries: copied.entries, bytes: copied.bytes, ms: Date.now() - started });
    } catch (err) {
      const e = VmctlError.from(err);
      // The agent's connection failing is what it is; anything else (a source gone or
      // unreadable, a destination the guest refuses) is the mount's, not the service's.
      const code = TRANSPORT_CODES.has(e.code) ? e.code : "FAILED_PRECONDITION";
      throw new VmctlError(code, `${field} (${mount.source} → ${mount.destination}): could not copy it into the VM: ${e.message}`, {
        cause: err,
        details: { ...errorDetails(serviceId), field },
      });
    }
  }
}
