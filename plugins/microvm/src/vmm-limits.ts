// The limits of the VMM a spec will run on, for the spec check (spec.ts). A spec is
// checked at create (the factory's validate(), synchronous), long before its service's
// VMM is spawned at start: no live VMM is at hand to ask GetInfo. So the binary the
// factory spawns is asked once, `vmctl-vmm --limits` (it prints GetInfo's limits from the
// same constants and exits: milliseconds, no KVM), and the answer is kept per binary — by
// path, size and mtime, so a binary rebuilt under a running orchestrator is asked again.
import { statSync } from "node:fs";
import { readVmmLimits, type VmmLimits } from "@vmctl/vmm-client";

const cache = new Map<string, { readonly version: string; readonly limits: VmmLimits }>();

/** `binary`'s limits (FAILED_PRECONDITION when it cannot say them). */
export function vmmLimitsOf(binary: string): VmmLimits {
  let version = "";
  try {
    const st = statSync(binary);
    version = `${st.size}:${st.mtimeMs}`;
  } catch {
    // readVmmLimits says why it cannot run.
  }
  const cached = cache.get(binary);
  if (cached !== undefined && cached.version === version) return cached.limits;
  const limits = readVmmLimits(binary);
  cache.set(binary, { version, limits });
  return limits;
}
