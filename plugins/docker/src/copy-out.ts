// copyOut(): a path in a service's container as a tar stream, straight from Docker's archive
// call — running, paused or exited, until the container is removed. Docker answers a
// missing path and a missing container alike (404), so the container is inspected to tell
// the caller which: the path (NOT_FOUND, naming it) or the service (FAILED_PRECONDITION).
//
// Docker holds the container's lock until an archive has been read to its end
// (moby/moby#29058): while a copy is read, every other call about the container (inspect,
// kill, pause, even recording its exit) waits. The archive is read at the caller's pace, so
// a caller that stalls would stall those too; stop() and destroy() therefore cut the
// copies still open (the reader gets CANCELLED saying why) before they ask Docker anything.
import { VmctlError, type ErrorDetails } from "@vmctl/core/contract";
import type { DockerEngine } from "./engine.js";

export interface CopyOutRequest {
  readonly engine: DockerEngine;
  readonly containerId: string;
  /** The container's name, for messages. */
  readonly containerName: string;
  readonly serviceId: string;
  readonly path: string;
  readonly details: ErrorDetails;
}

/** The copies of one service being read, so they can be cut. */
export class OpenCopies {
  readonly #open = new Set<AbortController>();
  /** Set by close(): no copy may start, the container is being removed. */
  #closed: string | undefined;

  /** The tar stream of `r.path`, yielded as Docker sends it (engine.archive: pulled, not buffered). */
  async *read(r: CopyOutRequest): AsyncGenerator<Uint8Array> {
    if (this.#closed !== undefined) throw new VmctlError("FAILED_PRECONDITION", `cannot copy ${r.path} out of ${r.serviceId}: ${this.#closed}`, { details: r.details });
    const abort = new AbortController();
    this.#open.add(abort);
    try {
      yield* containerArchive(r, abort.signal);
    } finally {
      this.#open.delete(abort);
    }
  }

  /** Ends every open copy: each reader's next read rejects with CANCELLED saying `why`. */
  cut(serviceId: string, why: string, details: ErrorDetails): void {
    for (const abort of this.#open) abort.abort(new VmctlError("CANCELLED", `a copy out of ${serviceId} was cut off: ${why}`, { details }));
  }

  /** cut(), and refuses copies from now on (the service is being destroyed). */
  close(serviceId: string, why: string, details: ErrorDetails): void {
    this.#closed = why;
    this.cut(serviceId, why, details);
  }
}

async function* containerArchive(r: CopyOutRequest, signal: AbortSignal): AsyncGenerator<Uint8Array> {
  const { path, details } = r;
  if (typeof path !== "string" || !path.startsWith("/") || path.includes("\0")) {
    throw new VmctlError("INVALID_ARGUMENT", `copy out of ${r.serviceId}: ${JSON.stringify(path)} is not an absolute path`, { details: { ...details, field: "path" } });
  }
  const archive = await r.engine.archive(r.containerId, path, { details, signal });
  if (archive !== undefined) {
    yield* archive;
    return;
  }
  if ((await r.engine.inspect(r.containerId)) === undefined) {
    throw new VmctlError("FAILED_PRECONDITION", `cannot copy ${path} out of ${r.serviceId}: container ${r.containerName} was removed outside vmctl`, { details });
  }
  throw new VmctlError("NOT_FOUND", `no such path in ${r.serviceId}: ${path}`, { details });
}
