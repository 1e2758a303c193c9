import { fileURLToPath } from "node:url";

/**
 * The build script of this CLI's checkout. This file sits at ts/cli/src/ and is bundled
 * into ts/cli/dist/: both three levels below the repository root. (Apart from
 * kernel-build.ts so that naming it in `vmctl kernel`'s help loads no child_process.)
 */
export function kernelBuildScriptPath(): string {
  return fileURLToPath(new URL("../../../images/kernel/build", import.meta.url));
}
