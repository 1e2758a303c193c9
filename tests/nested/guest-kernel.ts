// vmctl's own guest kernel (images/kernel/build), as the Linux tests boot it. The build
// is npm test's prepare step; a test never starts a 10-minute build itself. It asks the
// build script for the cache key of the *current* config (`--key`: no build, no lock)
// and boots exactly that kernel, so a stale `default` link never passes for the one the
// checkout describes. Missing: a loud error saying how to build it, never a skip.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const BUILD = fileURLToPath(new URL("../../images/kernel/build", import.meta.url));

export interface GuestKernel {
  /** The ELF vmlinux. */
  readonly vmlinux: string;
  /** `make kernelrelease` of it, e.g. 6.1.192. */
  readonly release: string;
  /** The cache key (config fragment, build script, source version). */
  readonly key: string;
}

export class GuestKernelMissingError extends Error {
  override readonly name = "GuestKernelMissingError";
}

export function kernelCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.VMCTL_KERNEL_CACHE ?? "/var/cache/vmctl/kernel";
}

export function requireGuestKernel(env: NodeJS.ProcessEnv = process.env): GuestKernel {
  let key: string;
  try {
    key = execFileSync(BUILD, ["--key"], { encoding: "utf8", env, stdio: ["ignore", "pipe", "pipe"] }).trim();
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr?.trim();
    throw new GuestKernelMissingError(`vmctl's guest kernel: images/kernel/build --key failed: ${stderr || (err as Error).message}`);
  }
  const dir = join(kernelCacheDir(env), key);
  const vmlinux = join(dir, "vmlinux");
  if (!existsSync(vmlinux)) {
    throw new GuestKernelMissingError(
      `vmctl's guest kernel for this checkout (key ${key}) is not built: ${vmlinux} is missing. ` +
        "Run images/kernel/build (about 10 minutes on 2 cores; npm test's prepare step runs it).",
    );
  }
  const releaseFile = join(dir, "release");
  const release = existsSync(releaseFile) ? readFileSync(releaseFile, "utf8").trim() : "unknown";
  return { vmlinux, release, key };
}
