// Where the nested host finds what scripts/setup installed, with loud errors naming the
// fix when something is missing.
import { accessSync, constants, existsSync, readdirSync, realpathSync, statSync } from "node:fs";
import { delimiter, join } from "node:path";
import { NestedHostMissingError } from "./errors.js";

/** Cache of the nested host: L1 kernel extraction and built initramfs images. */
export function nestedCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.VMCTL_NESTED_CACHE ?? "/var/cache/vmctl/nested";
}

const SETUP_HINT = "run `npm run setup` (scripts/setup installs it)";

/** Debian's linux-image-amd64 as scripts/lib/setup-nested-host.sh extracted it. */
export interface L1Kernel {
  /** `uname -r` of the kernel, e.g. 6.1.0-57-amd64. */
  readonly release: string;
  /** The extraction's root (resolved, not the `current` symlink). */
  readonly root: string;
  /** The bzImage as Debian ships it. */
  readonly vmlinuz: string;
  /**
   * The same kernel as an uncompressed ELF, unpacked at setup: QEMU boots it through
   * its PVH entry without running the decompressor (~3 s of every boot under TCG).
   */
  readonly vmlinux: string;
  /** lib/modules/<release> inside the extraction, with modules.dep. */
  readonly modulesDir: string;
}

export function requireL1Kernel(cache: string = nestedCacheDir()): L1Kernel {
  const current = join(cache, "kernel", "current");
  if (!existsSync(current)) {
    throw new NestedHostMissingError(`nested host: no L1 kernel at ${current}; ${SETUP_HINT}`);
  }
  const root = realpathSync(current);
  const releases = existsSync(join(root, "lib/modules")) ? readdirSync(join(root, "lib/modules")) : [];
  const release = releases[0];
  if (releases.length !== 1 || release === undefined) {
    throw new NestedHostMissingError(
      `nested host: expected one kernel release under ${root}/lib/modules, found ${releases.length}; ${SETUP_HINT}`,
    );
  }
  const vmlinuz = join(root, "boot", `vmlinuz-${release}`);
  const vmlinux = join(root, "vmlinux");
  const modulesDir = join(root, "lib/modules", release);
  for (const needed of [vmlinuz, vmlinux, join(modulesDir, "modules.dep"), join(root, ".complete")]) {
    if (!existsSync(needed)) throw new NestedHostMissingError(`nested host: L1 kernel incomplete, ${needed} is missing; ${SETUP_HINT}`);
  }
  return { release, root, vmlinuz, vmlinux, modulesDir };
}

function isExecutableFile(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** The first executable `name` on PATH (or the fixed fallback directories), or a loud error. */
export function requireTool(name: string, what: string, env: NodeJS.ProcessEnv = process.env): string {
  // Non-login shells may lack the sbin directories; QEMU and busybox live in /usr/bin.
  const dirs = [...(env.PATH ?? "").split(delimiter).filter((d) => d.startsWith("/")), "/usr/bin", "/usr/sbin", "/bin"];
  for (const dir of dirs) {
    const candidate = join(dir, name);
    if (isExecutableFile(candidate)) return candidate;
  }
  throw new NestedHostMissingError(`nested host: ${name} (${what}) not found on PATH; ${SETUP_HINT}`);
}

export const requireQemu = (): string => requireTool("qemu-system-x86_64", "Debian package qemu-system-x86");
