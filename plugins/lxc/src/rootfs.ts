// Host-side work on the container's root filesystem: where it is, the mount points LXC
// needs (a read-only rootfs cannot get them created from inside), and whether the
// command exists at all (init.lxc reports an exec failure only as status 255, silently).
import { lstatSync, readFileSync, statSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join, posix } from "node:path";
import { DEFAULT_PATH } from "./config.js";
import type { LxcSpec } from "./spec.js";

/** The rootfs directory a container config names (`lxc.rootfs.path = dir:...`), or the template default. */
export function rootfsOf(configFile: string, containerDir: string): string {
  let rootfs: string | undefined;
  try {
    for (const line of readFileSync(configFile, "utf8").split("\n")) {
      const m = /^\s*lxc\.rootfs\.path\s*=\s*(?:dir:)?(\/.*?)\s*$/.exec(line);
      if (m?.[1]) rootfs = m[1];
    }
  } catch {
    // no config: the default below
  }
  return rootfs ?? join(containerDir, "rootfs");
}

/**
 * Creates the directories (and empty files, for file mounts) that LXC mounts over:
 * /dev, /proc, /sys, /tmp, the mount destinations, the workdir, and `files` (vmctl's own
 * file mounts: the resolv.conf). Only what is missing; a path through a symlink is left
 * alone (it resolves inside the container, not here).
 */
export async function makeMountPoints(rootfs: string, spec: LxcSpec, files: readonly string[] = []): Promise<void> {
  const dirs = ["/dev", "/proc", "/sys", "/tmp"];
  if (spec.workdir !== undefined) dirs.push(spec.workdir);
  for (const dir of dirs) await makeInside(rootfs, dir, "dir");
  for (const file of files) await makeInside(rootfs, file, "file");
  for (const m of spec.mounts ?? []) {
    await makeInside(rootfs, m.destination, statSync(m.source).isDirectory() ? "dir" : "file");
  }
}

async function makeInside(rootfs: string, path: string, kind: "dir" | "file"): Promise<void> {
  const parts = path.split("/").filter(Boolean);
  let host = rootfs;
  for (let i = 0; i < parts.length; i++) {
    host = join(host, parts[i]!);
    const last = i === parts.length - 1;
    let st;
    try {
      st = lstatSync(host);
    } catch {
      st = undefined;
    }
    if (st?.isSymbolicLink()) return;
    if (st) {
      if (!last && !st.isDirectory()) return;
      continue;
    }
    if (last && kind === "file") await writeFile(host, "", { flag: "a" });
    else await mkdir(host);
  }
}

/**
 * Why args[0] cannot run from this rootfs, or undefined when it is found (or cannot be
 * judged from the host: a path through a mount or a symlink counts as found).
 */
export function commandMissing(rootfs: string, spec: LxcSpec): string | undefined {
  const command = spec.args[0]!;
  const workdir = spec.workdir ?? "/";
  const candidates = command.includes("/")
    ? [posix.resolve(workdir, command)]
    : (spec.env?.PATH ?? DEFAULT_PATH).split(":").filter((d) => d.startsWith("/")).map((d) => posix.join(d, command));
  for (const candidate of candidates) {
    const mount = (spec.mounts ?? []).find((m) => candidate === m.destination || candidate.startsWith(`${m.destination}/`));
    if (mount) return undefined;
    try {
      lstatSync(join(rootfs, candidate));
      return undefined;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") return undefined;
    }
  }
  return command.includes("/")
    ? `${command} does not exist in the rootfs ${rootfs}`
    : `${command} was not found on PATH in the rootfs ${rootfs}`;
}
