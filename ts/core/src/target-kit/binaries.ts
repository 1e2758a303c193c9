import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";

/** PATH plus the sbin directories: runc, lxc-* and dockerd live there on Debian, and PATH may lack them. */
export function defaultSearchDirs(): string[] {
  const path = (process.env.PATH ?? "").split(delimiter);
  return [...path, "/usr/local/sbin", "/usr/sbin", "/sbin"].filter(Boolean);
}

/** An executable named `name` in one of `dirs`, or undefined. */
export function findBinary(name: string, dirs: readonly string[] = defaultSearchDirs()): string | undefined {
  for (const dir of dirs) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}
