// copyOut() for the kit's tests of its copy check: the "process" target's services are host
// processes, so a service's path is a host path, packed here by node-tar as it is read.
import { lstatSync } from "node:fs";
import { basename, dirname } from "node:path";
import { create } from "tar";
import { VmctlError } from "@vmctl/core/contract";
import { brokenProcessTarget } from "./broken/delegate.js";
import { hostExecIn } from "./host-exec.js";

/** A tar of `path` under its own name; with `follow`, symlinks are packed as what they point to (wrong). */
export async function* hostCopyOut(path: string, follow = false): AsyncGenerator<Uint8Array> {
  try {
    lstatSync(path);
  } catch {
    throw new VmctlError("NOT_FOUND", `${path}: no such file or directory`);
  }
  yield* create({ cwd: dirname(path), portable: true, follow }, [basename(path)]) as AsyncIterable<Uint8Array>;
}

/** The process target with exec and an honest copyOut. */
export const hostCopyTarget = brokenProcessTarget({ capabilities: { exec: true, copy: true }, controller: (inner) => ({ exec: hostExecIn(inner), copyOut: (path) => hostCopyOut(path) }) });

/** The process target with copy but no exec: the workload writes the tree. */
export const hostCopyWithoutExecTarget = brokenProcessTarget({ capabilities: { copy: true }, controller: () => ({ copyOut: (path) => hostCopyOut(path) }) });

/** Broken: claims copy, but packs what symlinks point to instead of the links. */
export const followingCopyTarget = brokenProcessTarget({ capabilities: { exec: true, copy: true }, controller: (inner) => ({ exec: hostExecIn(inner), copyOut: (path) => hostCopyOut(path, true) }) });
