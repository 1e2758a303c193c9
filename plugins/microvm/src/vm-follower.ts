// Following a running VM for as long as this orchestrator process may: its console into
// the console file (one Console session), its end (the exit, learned through the service's
// state() while everyone waits on one shared state stream), and then the VMM retired —
// stopped and released, since it has nothing more to give.
import { setTimeout as sleep } from "node:timers/promises";
import { VmctlError, type ExitInfo, type ServiceState, type TargetContext } from "@vmctl/core/contract";
import { ConsolePump } from "./console-log.js";
import { errorDetails } from "./errors.js";
import type { ServiceLayout } from "./layout.js";
import { VmmConnection } from "./vmm-connection.js";
import { terminate, type ProcessRef } from "./vmm-process.js";
import { releaseVmm } from "./vmm-stop.js";
import { releaseAgentSockets } from "./workload.js";

/** How long to wait between looks at the state when no state stream can say more. */
const POLL_MS = 50;

/** What the follower asks of the controller it follows for. */
export interface FollowedService {
  readonly id: string;
  readonly ctx: TargetContext;
  readonly layout: ServiceLayout;
  /** The service's state; an exit learned there is settled (persisted) by it. */
  state(): Promise<ServiceState>;
  exitKnown(): boolean;
  vmm(): ProcessRef | undefined;
  /** The factory closed (orchestrator shutdown): stop following, the VM runs on. */
  detached(): boolean;
  destroyed(): boolean;
}

export class VmFollower {
  #conn: VmmConnection | undefined;
  #pump: ConsolePump | undefined;
  /** The exit, then the VMM retired: started by the first follow(), never replaced. */
  #following: Promise<void> | undefined;

  constructor(private readonly service: FollowedService) {}

  /** The connection to the VMM, while there is one. */
  get connection(): VmmConnection | undefined {
    return this.#conn;
  }

  /** The console is still being copied into its file. */
  get pumping(): boolean {
    return this.#pump !== undefined;
  }

  /** Settles once the VMM is retired after the exit (or following was cut off); undefined before follow(). */
  get retired(): Promise<void> | undefined {
    return this.#following;
  }

  connect(): VmmConnection {
    this.#conn = new VmmConnection(this.service.layout.socketPath);
    return this.#conn;
  }

  /** Starts following over the current connection: the console, and the exit (then retires the VMM). Once. */
  follow(): void {
    const conn = this.#conn;
    if (!conn || this.service.detached()) return;
    this.#pump ??= new ConsolePump(conn.client, this.service.layout.consoleFile, this.service.ctx.log);
    this.#following ??= this.untilExit().then(
      () =>
        this.#retire().catch((err: unknown) => {
          this.service.ctx.log.warn("could not retire the VMM after its VM exited", { error: String(err) });
        }),
      // Cut off (detach): nothing to retire; wait() reports the cancel itself.
      () => undefined,
    );
  }

  /** The exit, however it comes: state() learns it, the shared state stream says when to look. */
  async untilExit(): Promise<ExitInfo> {
    const s = this.service;
    let streamEnded = false;
    for (;;) {
      if (s.detached()) {
        throw new VmctlError("CANCELLED", `stopped following ${s.id}: the microvm target was closed`, { details: errorDetails(s.id) });
      }
      const state = await s.state().catch(() => undefined);
      if (state?.exit) return state.exit;
      const conn = this.#conn;
      if (conn && state !== undefined && state.phase !== "created") {
        // The state stream ends when the VM exits (then the look above, at once, finds the
        // exit), or errors when the VMM goes away: a stream that ended with no exit to show
        // waits a moment before the next, so a failing one cannot spin.
        if (streamEnded && !s.exitKnown()) await sleep(POLL_MS);
        await conn.stateStreamEnded();
        streamEnded = true;
      } else {
        streamEnded = false;
        await sleep(POLL_MS * 2);
      }
    }
  }

  /** Cuts the console and the connection; resolves once the console file is let go. */
  async disconnect(): Promise<void> {
    const pump = this.#pump;
    pump?.stop();
    this.#conn?.close();
    this.#conn = undefined;
    await pump?.done;
    this.#pump = undefined;
  }

  /**
   * After the exit is on disk and the console drained, stop the VMM (freeing its memory)
   * and release its process and socket — unless the service was detached or destroyed
   * meanwhile: then that path owns the VMM.
   */
  async #retire(): Promise<void> {
    const s = this.service;
    await this.#pump?.done;
    if (s.detached() || s.destroyed()) return;
    this.#pump = undefined;
    this.#conn?.close();
    this.#conn = undefined;
    const vmm = s.vmm();
    if (vmm) await terminate(vmm);
    if (s.detached() || s.destroyed()) return;
    releaseVmm(s.ctx.resources, s.id, s.layout.socketPath);
    releaseAgentSockets(s.ctx.resources, s.layout);
  }
}
