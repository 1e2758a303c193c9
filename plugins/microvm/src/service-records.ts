// What one service must remember across orchestrator restarts about how its VM ends: the
// exit (first one wins) and whether a stop was asked for. Both are files in the serviceDir
// (layout.ts), so a controller made by adopt() reads what the original one wrote. Also the
// controller's record() and its pause/resume switch, kept out of controller.ts.
import { readFileSync } from "node:fs";
import { VmctlError, type ExitInfo, type JsonValue, type Logger, type ServiceState } from "@vmctl/core/contract";
import type { VmmClient } from "@vmctl/vmm-client";
import { vmctlError } from "./errors.js";
import { writeAtomic } from "@vmctl/core/target-kit";
import { parseExit, serializeExit } from "./exit.js";
import type { VmConfig, VmImage } from "./vm-config.js";
import { RPC } from "./vmm-connection.js";
import type { ProcessRef } from "./vmm-process.js";

export interface StopRecord {
  /** stop() came before the VM was ever started. */
  readonly beforeStart?: boolean;
  readonly at: string;
}

export class ServiceRecords {
  #exit: ExitInfo | undefined;

  constructor(
    private readonly files: { readonly exitFile: string; readonly stopFile: string },
    private readonly log: Logger,
  ) {}

  /** The exit, if it is known here or was persisted (by this or an earlier controller). */
  exit(): ExitInfo | undefined {
    if (this.#exit) return this.#exit;
    try {
      const exit = parseExit(readFileSync(this.files.exitFile, "utf8"));
      if (exit) this.#exit = exit;
      return exit;
    } catch {
      return undefined;
    }
  }

  /**
   * Keeps the exit, first one wins, and persists it (unless `persist` is false: a destroyed
   * service has no files any more) so an adopt after the VMM is gone still knows it.
   */
  settle(exit: ExitInfo, persist: boolean): ExitInfo {
    const known = this.exit();
    if (known) return known;
    this.#exit = exit;
    if (persist) {
      try {
        writeAtomic(this.files.exitFile, serializeExit(exit));
      } catch (err) {
        this.log.warn("could not persist the exit", { error: String(err) });
      }
    }
    return exit;
  }

  /** The stop request, if stop() (or destroy()) asked for one. */
  stop(): StopRecord | undefined {
    try {
      return JSON.parse(readFileSync(this.files.stopFile, "utf8")) as StopRecord;
    } catch {
      return undefined;
    }
  }

  /** Records the stop request; the first one is kept. */
  requestStop(stop: StopRecord): void {
    if (this.stop()) return;
    writeAtomic(this.files.stopFile, `${JSON.stringify(stop)}\n`);
  }
}

/** What the orchestrator persists of a controller (its record()): the VM id, the socket, the VMM, the image. */
export function controllerRecord(vmId: string, socket: string, vmm: ProcessRef | undefined, readVm: () => VmConfig | undefined): JsonValue {
  let image: VmImage | undefined;
  try {
    image = readVm()?.image;
  } catch {
    // A broken vm.json is start()'s to report.
  }
  return {
    vmId,
    socket,
    vmm: vmm ? { pid: vmm.pid, startTime: vmm.startTime } : null,
    ...(image === undefined ? {} : { image: { digest: image.digest, disk: image.disk } }),
  };
}

/** pause() or resume() of a VM in `state`: idempotent once in `to`, refused unless in `from`. */
export async function switchVm(id: string, verb: "pause" | "resume", state: ServiceState, client: VmmClient | undefined, from: ServiceState["phase"], to: ServiceState["phase"]): Promise<void> {
  if (state.phase === to) return;
  if (state.phase !== from || !client) {
    throw new VmctlError("FAILED_PRECONDITION", `cannot ${verb} ${id}: it is ${state.phase}`, { details: { serviceId: id } });
  }
  await client[verb](RPC).catch((err: unknown) => {
    throw vmctlError(err, `${verb === "pause" ? "pausing" : "resuming"} ${id}`, id);
  });
}
