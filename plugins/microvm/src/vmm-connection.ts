// One connection to a service's VMM over its API socket: the gRPC client, what the VMM's
// GetInfo said about its KVM, and at most one WatchState stream at a time, shared by
// everyone waiting for the VM to end (wait(), stop() and the follower used to open one each).
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { VmctlError } from "@vmctl/core/contract";
import { VmmClient } from "@vmctl/vmm-client";
import { errorDetails } from "./errors.js";
import { isAlive, type ProcessRef } from "./vmm-process.js";

/** The deadline of each unary call to the VMM. */
export const RPC = { timeoutMs: 10_000 };

export class VmmConnection {
  readonly client: VmmClient;
  #pvmHost = false;
  #stateStream: Promise<void> | undefined;

  constructor(socketPath: string) {
    this.client = new VmmClient(socketPath);
  }

  /** The VMM's KVM is PVM (from its GetInfo): a KVM error then most likely means "not here". */
  get pvmHost(): boolean {
    return this.#pvmHost;
  }

  /**
   * Resolves once the VMM answers GetInfo; fails when its process died first (with the last
   * line of its log, which says why) or after `timeoutMs`.
   */
  async whenReady(ref: ProcessRef, timeoutMs: number, vmmLogFile: string, serviceId: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (let delay = 1; ; delay = Math.min(delay * 2, 50)) {
      if (!isAlive(ref)) {
        throw new VmctlError("UNAVAILABLE", `vmctl-vmm exited before its API was ready: ${lastLine(vmmLogFile)}`, {
          details: errorDetails(serviceId),
        });
      }
      try {
        this.#pvmHost = (await this.client.getInfo({ timeoutMs: 1000 })).kvm.pvm;
        return;
      } catch (err) {
        const e = VmctlError.from(err);
        // Not listening yet: UNAVAILABLE, or DEADLINE_EXCEEDED while grpc-js waits to connect.
        if ((e.code !== "UNAVAILABLE" && e.code !== "DEADLINE_EXCEEDED") || Date.now() > deadline) throw e;
      }
      await sleep(delay);
    }
  }

  /**
   * Resolves when the state stream ends: the VM exited, or the stream failed because the
   * VMM went away. Callers arriving while a stream is open share it; a later call opens
   * the next one.
   */
  stateStreamEnded(): Promise<void> {
    this.#stateStream ??= this.client.waitExit().then(
      () => {
        this.#stateStream = undefined;
      },
      () => {
        this.#stateStream = undefined;
      },
    );
    return this.#stateStream;
  }

  /** Calls in flight (the state stream too) fail with CANCELLED. */
  close(): void {
    this.client.close();
  }
}

function lastLine(file: string): string {
  try {
    return readFileSync(file, "utf8").trim().split("\n").at(-1) ?? "";
  } catch {
    return "";
  }
}
