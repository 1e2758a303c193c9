// vmctl's own guest kernel (images/kernel/build), as the Linux tests boot it. The build
// is npm test's prepare step; a test never starts a 10-minute build itself. It asks the
// build script for the cache key of the *current* config (`--key`: no build, no lock)
// and boots exactly that kernel, so a stale `default` link never passes for the one the
// checkout describes. Missing: a loud error saying how to build it, never a skip.
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { findKernel, kernelCacheDir } from "vmctl-plugin-microvm/kernel-cache";

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

export function requireGuestKernel(env: NodeJS.ProcessEnv = process.env): GuestKernel {
  let key: string;
  try {
    key = execFileSync(BUILD, ["--key"], { encoding: "utf8", env, stdio: ["ignore", "pipe", "pipe"] }).trim();
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr?.trim();
    throw new GuestKernelMissingError(`vmctl's guest kernel: images/kernel/build --key failed: ${stderr || (err as Error).message}`);
  }
  // The cache is read the way the microvm target and `vmctl kernel ls` read it.
  const kernel = findKernel(key, kernelCacheDir(env));
  if (kernel === undefined) {
    throw new GuestKernelMissingError(
      `vmctl's guest kernel for this checkout (key ${key}) is not built in ${kernelCacheDir(env)}. ` +
        "Run images/kernel/build (about 10 minutes on 2 cores; npm test's prepare step runs it).",
    );
  }
  const { vmlinux } = kernel;
  const release = kernel.release ?? "unknown";
  return { vmlinux, release, key };
}
