// How a microVM ended, as a service exit. Pure: the VMM's final state plus what the
// controller knows (did stop() ask for it?) in, ExitInfo out.
import type { ExitInfo } from "@vmctl/core/contract";
import type { VmExit } from "@vmctl/vmm-client";

export interface ExitContext {
  /** stop() (or destroy()) asked the VM to end before it did. */
  readonly stopRequested: boolean;
  readonly at: Date;
  /** The VMM said its KVM is PVM (no hardware virtualization): a stock Linux cannot run there. */
  readonly pvmHost?: boolean;
}

/** How the VMM's exit detail starts when a kernel panic came before a reset or halt. */
export const PANIC_PREFIX = "guest kernel panic:";

/** Why a KVM error on a PVM host is most likely not the guest's fault. */
export const PVM_HINT =
  "this host's KVM is PVM (no hardware virtualization): it runs vmctl's test guests, not a stock Linux kernel; `vmctl doctor` says more";

/**
 * The mapping (documented in the README):
 * - `guest-exit` (the guest wrote the exit port): `{ code, reason: "exited" }`, also
 *   during a stop — the guest chose its code;
 * - `reset` (i8042 reset, triple fault) and `shutdown` (HLT reached the VMM): the machine
 *   ended cleanly without an exit code — `{ code: 0, reason: "reset" | "shutdown" }`,
 *   unless the VMM saw a kernel panic first (`{ code: null, reason: "failed" }`),
 *   the way a guest's `reboot`/`poweroff` is a clean end. After stop()'s Ctrl-Alt-Del
 *   this is the graceful stop; the detail says so;
 * - `forced` (the grace ran out, or destroy): `{ code: null, reason: "stopped" }`;
 * - `kvm-error`, `vmm-error`, `unknown`: `{ code: null, reason: "failed", detail }`; a
 *   KVM error on a PVM host says that this KVM cannot run a stock Linux.
 */
export function exitFromVm(exit: VmExit, ctx: ExitContext): ExitInfo {
  const at = ctx.at;
  const detail = exit.detail.trim();
  switch (exit.reason) {
    case "guest-exit":
      return { code: exit.code, reason: "exited", at };
    case "reset":
    case "shutdown": {
      // The VMM names a kernel panic that came before the reset: a failure, not a clean end.
      if (detail.startsWith(PANIC_PREFIX)) return { code: null, reason: "failed", detail, at };
      const why = ctx.stopRequested
        ? `the guest ${exit.reason === "reset" ? "reset" : "shut down"} after stop() sent Ctrl-Alt-Del`
        : undefined;
      const text = [why, detail].filter(Boolean).join("; ");
      return { code: 0, reason: exit.reason, ...(text ? { detail: text } : {}), at };
    }
    case "forced":
      return ctx.stopRequested
        ? { code: null, reason: "stopped", at }
        : { code: null, reason: "stopped", detail: "the VMM force-stopped the VM, not at vmctl's request", at };
    case "kvm-error": {
      const hint = ctx.pvmHost ? ` (${PVM_HINT})` : "";
      return { code: null, reason: "failed", detail: `KVM error: ${detail || "no detail"}${hint}`, at };
    }
    case "vmm-error":
      return { code: null, reason: "failed", detail: `VMM error: ${detail || "no detail"}`, at };
    default:
      return { code: null, reason: "failed", detail: `the VM ended for an unknown reason${detail ? `: ${detail}` : ""}`, at };
  }
}

/** The VMM process vanished before anyone learned how the VM ended. */
export function lostExit(at: Date): ExitInfo {
  return {
    code: null,
    reason: "lost",
    detail: "the VMM process ended while no one was watching, so how the VM ended is unknown",
    at,
  };
}

/** ExitInfo as stored in the exit file (JSON: the date as an ISO string). */
export function serializeExit(exit: ExitInfo): string {
  return `${JSON.stringify({ ...exit, at: exit.at.toISOString() })}\n`;
}

export function parseExit(text: string): ExitInfo | undefined {
  try {
    const raw = JSON.parse(text) as { code?: unknown; signal?: unknown; reason?: unknown; detail?: unknown; at?: unknown };
    if (typeof raw.reason !== "string" || typeof raw.at !== "string") return undefined;
    const code = typeof raw.code === "number" ? raw.code : null;
    return {
      code,
      reason: raw.reason,
      ...(typeof raw.signal === "string" ? { signal: raw.signal } : {}),
      ...(typeof raw.detail === "string" ? { detail: raw.detail } : {}),
      at: new Date(raw.at),
    };
  } catch {
    return undefined;
  }
}
