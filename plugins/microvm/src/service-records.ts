// What one service must remember across orchestrator restarts about how its VM ends: the
// exit (first one wins) and whether a stop was asked for. Both are files in the serviceDir
// (layout.ts), so a controller made by adopt() reads what the original one wrote.
import { readFileSync } from "node:fs";
import type { ExitInfo, Logger } from "@vmctl/core/contract";
import { writeAtomic } from "@vmctl/core/target-kit";
import { parseExit, serializeExit } from "./exit.js";

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
