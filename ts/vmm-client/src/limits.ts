// The limits of a vmctl-vmm binary without a running VMM: `vmctl-vmm --limits` prints
// GetInfo's Limits message as its JSON mapping, decoded here by the same converter as
// GetInfo's answer.
import { spawnSync } from "node:child_process";
import { VmctlError } from "@vmctl/core/contract";
import { vmm } from "@vmctl/proto";
import { limitsFromProto } from "./convert.js";
import type { VmmLimits } from "./types.js";

/** How long `vmctl-vmm --limits` may take (it prints constants: milliseconds). */
const LIMITS_TIMEOUT_MS = 10_000;

/**
 * Runs `binary --limits` (synchronously: callers check specs synchronously; it takes a few
 * milliseconds). FAILED_PRECONDITION when the binary cannot run or publishes no limits.
 */
export function readVmmLimits(binary: string): VmmLimits {
  const run = spawnSync(binary, ["--limits"], { encoding: "utf8", timeout: LIMITS_TIMEOUT_MS, stdio: ["ignore", "pipe", "pipe"] });
  const fail = (why: string, cause?: unknown): VmctlError =>
    new VmctlError("FAILED_PRECONDITION", `cannot read the limits of ${binary} (\`${binary} --limits\`): ${why}`, { cause });
  if (run.error) throw fail(run.error.message, run.error);
  if (run.status !== 0) throw fail(run.stderr.trim().split("\n")[0] || `exit ${run.status ?? run.signal}`);
  let limits: VmmLimits | undefined;
  try {
    limits = limitsFromProto(vmm.v1.Limits.fromObject(JSON.parse(run.stdout) as Record<string, unknown>));
  } catch (err) {
    throw fail(`not the limits' JSON: ${String(err)}`, err);
  }
  if (limits === undefined) throw fail(`no limits in ${JSON.stringify(run.stdout.trim())}`);
  return limits;
}
