// An ImageAccess for places with no image engine (test contexts, a vmctld started
// without one): every use is refused with FAILED_PRECONDITION saying why.
import type { ImageAccess } from "../contract/index.js";
import { VmctlError } from "../errors.js";

export function unavailableImages(reason = "this vmctld has no image engine"): ImageAccess {
  const refuse = (): Promise<never> => Promise.reject(new VmctlError("FAILED_PRECONDITION", reason));
  return { use: refuse, createWritableLayer: refuse };
}
