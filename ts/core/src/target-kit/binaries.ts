import { accessSync, constants, statSync } from "node:fs";
import { delimiter, isAbsolute, join } from "node:path";

/** PATH plus the sbin directories: runc, lxc-* and dockerd live there on Debian, and PATH may lack them. */
export function defaultSearchDirs(): string[] {
  const path = (process.env.PATH ?? "").split(delimiter);
  return [...path, "/usr/local/sbin", "/usr/sbin", "/sbin"].filter(Boolean);
}

/** An executable named `name` in one of `dirs`, or undefined. */
export function findBinary(name: string, dirs: readonly string[] = defaultSearchDirs()): string | undefined {
  for (const dir of dirs) {
    // A relative PATH entry ("." or "bin") would make the answer depend on the cwd.
    if (!isAbsolute(dir)) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      if (!statSync(candidate).isFile()) continue;
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}
