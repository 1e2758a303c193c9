import { accessSync, constants } from "node:fs";
import { fileURLToPath } from "node:url";

/** The release-built `vmctl-vmm` (what users run), or $VMCTL_VMM_BIN. */
export function vmmBinary(): string {
  const path = process.env.VMCTL_VMM_BIN ?? fileURLToPath(new URL("../../target/release/vmctl-vmm", import.meta.url));
  try {
    accessSync(path, constants.X_OK);
  } catch {
    throw new Error(`vmctl-vmm not found at ${path}: run \`npm run build\` first`);
  }
  return path;
}
