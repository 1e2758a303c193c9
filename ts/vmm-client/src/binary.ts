import { accessSync, constants, statSync } from "node:fs";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";
import { VmctlError } from "@vmctl/core/contract";

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/**
 * The checkout's own builds, newest first: `npm run build` links the VMM statically for
 * x86_64-unknown-linux-gnu (scripts/build); a plain `cargo build --release` puts a dynamic
 * one in target/release. The newer one is the code as it is now.
 */
const CHECKOUT_BUILDS = ["../../../target/x86_64-unknown-linux-gnu/release/vmctl-vmm", "../../../target/release/vmctl-vmm"];

/** Where this checkout's builds of `vmctl-vmm` go (absolute paths; they may not exist). */
export function checkoutVmmBuilds(): string[] {
  // dist/index.js (or src/binary.ts) sits three levels below the repository root.
  return CHECKOUT_BUILDS.map((rel) => fileURLToPath(new URL(rel, import.meta.url)));
}

/** The newest build of `vmctl-vmm` in this checkout, if any. */
export function checkoutVmmBinary(): string | undefined {
  return checkoutVmmBuilds()
    .filter(isExecutable)
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
}

/**
 * Where `vmctl-vmm` is: `$VMCTL_VMM_BIN` if set, else the checkout's newest build (when
 * running from a checkout), else the first on PATH. Undefined when none exists.
 */
export function findVmmBinary(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.VMCTL_VMM_BIN) return isExecutable(env.VMCTL_VMM_BIN) ? env.VMCTL_VMM_BIN : undefined;
  const built = checkoutVmmBinary();
  if (built) return built;
  for (const dir of (env.PATH ?? "").split(delimiter).filter(Boolean)) {
    const candidate = join(dir, "vmctl-vmm");
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/** {@link findVmmBinary}, failing with NOT_FOUND and what to do when there is none. */
export function requireVmmBinary(env: NodeJS.ProcessEnv = process.env): string {
  const found = findVmmBinary(env);
  if (found) return found;
  const where = env.VMCTL_VMM_BIN ? `VMCTL_VMM_BIN=${env.VMCTL_VMM_BIN} is not an executable file` : "not built and not on PATH";
  throw new VmctlError("NOT_FOUND", `vmctl-vmm: ${where} (run \`npm run build\`)`);
}
