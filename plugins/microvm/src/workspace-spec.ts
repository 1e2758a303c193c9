// The spec's workspace fields: `mounts` (host paths copied into the VM before the workload
// starts) and `copyOut` (guest paths kept when the workload ends, for copyOut() after the
// VM has powered off). Only an image VM run by the guest agent has something to copy with.
import { statSync } from "node:fs";
import { LIMITS, ValidationError } from "@vmctl/core/contract";
import { containerPath, mounts, str, type BindMount, type StringCheck } from "@vmctl/core/target-kit";

/** A path's longest spelling (PATH_MAX), as the orchestrator checks run.mounts and run.copyOut. */
const MAX_PATH_BYTES = 4096;

/** A path the spec names: a string without NUL, at most PATH_MAX bytes. */
const pathText: StringCheck = (value, field) => {
  const text = str(value, field);
  if (Buffer.byteLength(text) > MAX_PATH_BYTES) throw new ValidationError(field, `is longer than ${MAX_PATH_BYTES} bytes`);
  return text;
};

/** "/a/b/" and "/a/b" are one guest path: kept without the trailing slash ("/" stays "/"). */
export function guestPathKey(path: string): string {
  return path.replace(/\/+$/, "") || "/";
}

/**
 * `mounts`: the kit's rule (absolute existing source, absolute destination other than "/",
 * readOnly a boolean), a source a copy can take (a directory or a regular file, symlinks
 * followed), destinations unique, at most LIMITS.runPathCount of them.
 */
export function workspaceMounts(value: unknown): BindMount[] {
  const checked = mounts(value, "mounts", pathText);
  if (checked.length > LIMITS.runPathCount) throw new ValidationError("mounts", `has ${checked.length} entries; at most ${LIMITS.runPathCount}`);
  const destinations = new Map<string, number>();
  return checked.map((mount, i) => {
    const stats = statSync(mount.source);
    if (!stats.isDirectory() && !stats.isFile()) {
      throw new ValidationError(`mounts[${i}].source`, `${mount.source} is neither a directory nor a regular file (the VM gets a copy of it)`);
    }
    const destination = guestPathKey(mount.destination);
    const earlier = destinations.get(destination);
    if (earlier !== undefined) throw new ValidationError(`mounts[${i}].destination`, `${destination} is mounts[${earlier}]'s destination too`);
    destinations.set(destination, i);
    return { ...mount, destination };
  });
}

/**
 * `copyOut`: absolute guest paths without "..", other than "/", at most
 * LIMITS.runPathCount; a path given twice is kept once (`--copy-out P:a --copy-out P:b`).
 */
export function workspaceCopyOut(value: unknown): string[] {
  if (!Array.isArray(value)) throw new ValidationError("copyOut", "must be an array of absolute paths in the guest");
  if (value.length > LIMITS.runPathCount) throw new ValidationError("copyOut", `has ${value.length} entries; at most ${LIMITS.runPathCount}`);
  const paths = value.map((item, i) => {
    const path = guestPathKey(containerPath(item, `copyOut[${i}]`, pathText));
    if (path === "/") throw new ValidationError(`copyOut[${i}]`, 'must not be "/" (name the directory whose results you want)');
    return path;
  });
  return [...new Set(paths)];
}
