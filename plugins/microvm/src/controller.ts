// One microvm service: one detached vmctl-vmm process, driven over its API socket. What
// must survive the orchestrator lives in the ledger (the VMM's pid + start time, its
// sockets) and in files in ctx.serviceDir (see layout.ts), so a controller made by adopt()
// sees what the original one would have. This class decides the lifecycle; each step is
// a module beside it: prepared-vm.ts (vm.json, the image's disks), vmm-launch.ts (spawn,
// configure, start), vm-follower.ts (console, exit, retiring the VMM) over
// vmm-connection.ts (API client, one state stream), service-state.ts, service-records.ts
// (exit and stop request on disk), vmm-stop.ts (stop escalation, release), reattach.ts
// (adopt); for an image run by the guest agent, workload.ts (workload, output, exec, copies).
import { VmctlError } from "@vmctl/core/contract";
import type { ExecProcess, ExecRequest, ExitInfo, JsonValue, LogChunk, LogOptions, ProgressSink, ServiceController, ServiceState, StopOptions, TargetContext } from "@vmctl/core/contract";
import { followFiles } from "@vmctl/core/target-kit";
import type { VmState } from "@vmctl/vmm-client";
import { errorDetails, vmctlError } from "./errors.js";
import { lostExit } from "./exit.js";
import { recordedVmm, type RecordedVmm, type ServiceLayout } from "./layout.js";
import { prepareVm, readVmFile, type VmToPrepare } from "./prepared-vm.js";
import { reattach, type Adopted } from "./reattach.js";
import { controllerRecord, ServiceRecords, switchVm } from "./service-records.js";
import { exited, stateOfVm } from "./service-state.js";
import type { MicrovmSpec } from "./spec.js";
import type { VmConfig } from "./vm-config.js";
import { VmFollower } from "./vm-follower.js";
import { RPC } from "./vmm-connection.js";
import { intendLaunch, launchVm, type VmmLaunch } from "./vmm-launch.js";
import { isAlive, terminate, type ProcessRef } from "./vmm-process.js";
import { releaseVmm, removePerVmFiles, shutdownOrTerminate, terminateAll } from "./vmm-stop.js";
import { removeTap } from "./vm-network.js";
import { AgentWorkload, releaseAgentSockets } from "./workload.js";
import { consoleTail } from "./workload-exit.js";

const DEFAULT_STOP_TIMEOUT_MS = 10_000;
/** Lines of the console an image VM's unexpected end is told with. */
const CONSOLE_TAIL_LINES = 15;

export interface MicrovmControllerOptions {
  readonly id: string;
  readonly spec: MicrovmSpec;
  readonly ctx: TargetContext;
  readonly binary: string;
  readonly layout: ServiceLayout;
  readonly vmId: string;
  /** Told when the controller is destroyed, so the factory stops tracking it. */
  readonly onDestroyed?: (c: MicrovmController) => void;
}

export class MicrovmController implements ServiceController {
  readonly id: string;
  readonly #ctx: TargetContext;
  readonly #l: ServiceLayout;
  readonly #vmId: string;
  readonly #onDestroyed: ((c: MicrovmController) => void) | undefined;
  readonly #createdAt = new Date();
  /** What prepareVm() and launchVm() need to know of the service. */
  readonly #vmInputs: VmToPrepare & VmmLaunch;
  readonly #records: ServiceRecords;
  /** The VMM process, once spawned (or found by adopt). */
  #vmm: ProcessRef | undefined;
  readonly #follower: VmFollower;
  readonly #adopted: Adopted;
  readonly #workload: AgentWorkload;
  #starting: Promise<void> | undefined;
  /** start() is between spawning the VMM and the VM running. */
  #startPending = false;
  /** vm.json, once written or read. */
  #vm: VmConfig | undefined;
  #destroyed = false;
  /** The factory closed (orchestrator shutdown): streams are cut, the VM runs on untouched. */
  #detached = false;

  constructor(options: MicrovmControllerOptions) {
    const { id, spec, ctx, binary, layout, vmId } = options;
    this.id = id;
    this.#ctx = ctx;
    this.#l = layout;
    this.#vmId = vmId;
    this.#onDestroyed = options.onDestroyed;
    this.#vmInputs = { serviceId: id, vmId, spec, binary, ctx, layout };
    this.#records = new ServiceRecords(layout, ctx.log);
    // What the follower and reattach may see and change of this controller, and no more.
    const inside = {
      id,
      ctx,
      layout,
      state: () => this.state(),
      exitKnown: () => this.#records.exit() !== undefined,
      settle: (exit: ExitInfo) => this.#settle(this.#withConsole(exit)),
      vmm: () => this.#vmm,
      setVmm: (ref: ProcessRef | undefined) => (this.#vmm = ref),
      detached: () => this.#detached,
      destroyed: () => this.#destroyed,
    };
    this.#follower = new VmFollower(inside);
    this.#adopted = { ...inside, follower: this.#follower };
    this.#workload = new AgentWorkload({ ...inside, settle: (exit: ExitInfo) => this.#settle(exit), stopRequested: () => this.#records.stop() !== undefined, vmmClient: () => this.#follower.connection?.client });
  }

  /** The VM id the VMM reports (state().instance). */
  get vmId(): string {
    return this.#vmId;
  }
  /** The VMM's API socket. */
  get socketPath(): string {
    return this.#l.socketPath;
  }

  /** The VMM process, when one was started (alive or not). */
  get vmmProcess(): ProcessRef | undefined {
    return this.#vmm;
  }

  /** Writes down the VM start will boot (vm.json; with an image, its disks): see prepared-vm.ts. Idempotent. */
  async prepare(progress?: ProgressSink): Promise<void> {
    this.#assertUsable();
    this.#vm = await prepareVm(this.#vmInputs, () => this.#readVm(), progress);
  }

  async start(): Promise<void> {
    this.#assertUsable();
    if (this.#starting) return this.#starting;
    if (this.#launched() || this.#records.exit() || this.#records.stop()?.beforeStart) return;
    this.#startPending = true;
    this.#starting = this.#start().finally(() => {
      this.#startPending = false;
    });
    return this.#starting;
  }

  async stop(options?: StopOptions): Promise<void> {
    if (this.#starting) await this.#starting.catch(() => undefined);
    const state = await this.state();
    if (state.phase === "exited") return;
    if (state.phase === "created") {
      this.#records.requestStop({ beforeStart: true, at: new Date().toISOString() });
      await this.state();
      return;
    }
    this.#records.requestStop({ at: new Date().toISOString() });
    const grace = options?.timeoutMs ?? DEFAULT_STOP_TIMEOUT_MS;
    // With the agent: SIGTERM to the workload, the grace, then forced (its end ends the VM).
    const agent = this.#readVm()?.agent !== undefined;
    if (!agent || !(await this.#workload.terminate(grace))) await shutdownOrTerminate(this.#follower.connection?.client, this.#vmm, agent ? 0 : grace, this.#ctx.log);
    await this.wait();
  }

  /** With a network, the guest's address while the VM is up (as other targets: while it runs). */
  async state(): Promise<ServiceState> {
    const state = await this.#state();
    const up = state.phase !== "created" && state.phase !== "exited";
    const network = up ? this.#readVm()?.network : undefined;
    return network === undefined ? state : { ...state, addresses: [network.address] };
  }

  async #state(): Promise<ServiceState> {
    const instance = this.#vmId;
    const known = this.#records.exit();
    if (known) return exited(known, instance);
    if (this.#destroyed) return exited({ code: null, reason: "stopped", detail: "destroyed", at: new Date() }, instance);
    const stop = this.#records.stop();
    if (!this.#launched()) {
      if (!stop?.beforeStart) return { phase: "created", instance, since: this.#createdAt };
      return exited(this.#settle({ code: null, reason: "stopped", detail: "stopped before it was started", at: new Date(stop.at) }), instance);
    }
    const ref = this.#vmm;
    // Intended but not spawned yet: start() is on it, or it was interrupted (adopt settles that).
    if (ref === undefined) return { phase: "starting", instance, since: this.#createdAt };
    const conn = this.#follower.connection;
    if (isAlive(ref) && conn) {
      let vm: VmState | undefined;
      try {
        vm = await conn.client.getState(RPC);
      } catch (err) {
        // Not answering yet (start() is waiting for its API), going away (SIGTERM), or stuck.
        if (this.#startPending) return { phase: "starting", pid: ref.pid, instance, since: this.#createdAt };
        if (isAlive(ref)) {
          throw new VmctlError("UNAVAILABLE", `VMM of ${this.id} does not answer: ${VmctlError.from(err).message}`, { cause: err, details: errorDetails(this.id) });
        }
      }
      // An agent VM ending inside start() failed to start: start() settles that, not the VM's end.
      const settleUnlessStarting = (e: ExitInfo) => (this.#startPending && this.#vm?.agent ? e : this.#settle(this.#withConsole(e)));
      if (vm) return stateOfVm(vm, { pid: ref.pid, instance, stopRequested: stop !== undefined, pvmHost: conn.pvmHost }, settleUnlessStarting);
    }
    // Alive but not connected: only while detached.
    if (isAlive(ref)) return { phase: stop ? "stopping" : "running", pid: ref.pid, instance, since: this.#createdAt };
    // The VMM is gone. It may have recorded the exit on its way (another controller).
    return exited(this.#records.exit() ?? this.#settle(lostExit(new Date())), instance);
  }

  async *logs(options?: LogOptions): AsyncIterable<LogChunk> {
    // With follow: until nothing more can come (exited, output drained). With the agent: the workload's stdout and stderr.
    const finished = () => !(options?.follow ?? false) || this.#detached || this.#destroyed || (this.#records.exit() !== undefined && !this.#follower.pumping && !this.#workload.pumping);
    if (this.#readVm()?.agent) yield* followFiles(this.#workload.logFiles, { follow: options?.follow, ended: finished, dir: this.#l.serviceDir, maxWaitMs: 250 });
    // The console file grows and the exit file appears in the service's directory, which
    // wakes the reader; the console pump ending does not, hence the short bound.
    else yield* followFiles([{ stream: "console" as const, path: this.#l.consoleFile }], { follow: true, ended: finished, dir: this.#l.serviceDir, maxWaitMs: 50 });
  }

  /**
   * The exit, once the VMM that ran the VM is retired too: whoever learns the exit from
   * here (the engine, `vmctl run`) never sees an exited VM whose VMM still runs.
   */
  async wait(): Promise<ExitInfo> {
    const exit = await this.#follower.untilExit();
    await this.#follower.retired;
    return exit;
  }

  /** Through the guest agent (image VMs only), its output streamed. */
  async exec(request: ExecRequest): Promise<ExecProcess> {
    return this.#workload.exec(request, this.#readVm()?.agent);
  }

  /** Image VMs only: from the agent while the VM runs, then the paths kept at the workload's end (workload.ts). */
  copyOut(path: string): AsyncIterable<Uint8Array> {
    return this.#workload.copyOut(path, this.#readVm()?.agent);
  }

  /** pause() and resume(): idempotent once there, refused unless running (paused). */
  async pause(): Promise<void> {
    await switchVm(this.id, "pause", await this.state(), this.#follower.connection?.client, "running", "paused");
  }

  async resume(): Promise<void> {
    await switchVm(this.id, "resume", await this.state(), this.#follower.connection?.client, "paused", "running");
  }

  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    if (this.#starting) await this.#starting.catch(() => undefined);
    const state = await this.state().catch(() => undefined);
    const client = this.#follower.connection?.client;
    if (state && state.phase !== "exited" && state.phase !== "created" && client) {
      // Force it now, through the API, so the exit is learned and kept as "stopped".
      this.#records.requestStop({ at: new Date().toISOString() });
      await client.shutdown(0, { timeoutMs: 5000 }).catch(() => undefined);
      await this.state().catch(() => undefined);
    }
    this.#destroyed = true;
    await this.#workload.disconnect();
    await this.#follower.disconnect();
    releaseAgentSockets(this.#ctx.resources, this.#l);
    await terminateAll(this.#vmm, this.#l.socketPath);
    releaseVmm(this.#ctx.resources, this.id, this.#l.socketPath);
    // After the VMM, which held the TAP open.
    await removeTap(this.#ctx);
    removePerVmFiles(this.#ctx.resources, this.#l);
    this.#onDestroyed?.(this);
    this.#ctx.log.debug("microvm destroyed", { vmId: this.#vmId });
  }

  record(): JsonValue {
    return controllerRecord(this.#vmId, this.#l.socketPath, this.#vmm, () => this.#readVm());
  }

  // ---- for the factory ----

  /**
   * adopt(): reconnects to the VMM the ledger names when it still runs, else reports its
   * persisted exit (or "lost"); an interrupted start is finished off. See reattach.ts.
   */
  async reattach(recorded: RecordedVmm | undefined): Promise<void> {
    await reattach(this.#adopted, recorded);
    // The agent's relay and connection remade (exec, stop), and the workload's output and exit followed again (workload.ts).
    const agent = this.#readVm()?.agent;
    if (agent && this.#follower.connection && !this.#records.exit()) await this.#workload.attach(await this.#workload.connect(agent), agent);
  }

  /** Cuts the streams and the connection; the VM and its VMM run on (orchestrator shutdown). */
  async detach(): Promise<void> {
    this.#detached = true;
    await this.#workload.disconnect();
    await this.#follower.disconnect();
  }

  // ---- internals ----

  async #start(): Promise<void> {
    // Prepared at create (or by an earlier process): vm.json is the VM, only re-checked here.
    const vm = (this.#vm = await prepareVm(this.#vmInputs, () => this.#readVm()));
    intendLaunch(this.#vmInputs, vm);
    try {
      await launchVm(this.#vmInputs, vm, this.#follower, (ref) => (this.#vmm = ref));
      if (vm.agent) await this.#workload.run(vm.agent);
    } catch (err) {
      const e = vmctlError(err, `starting the VM of ${this.id}`, this.id);
      this.#settle({ code: null, reason: "failed", detail: e.message, at: new Date() });
      await this.#workload.disconnect();
      releaseAgentSockets(this.#ctx.resources, this.#l);
      await this.#follower.disconnect();
      // Only this start can have spawned it: start() does nothing once a VMM was launched.
      if (this.#vmm) await terminate(this.#vmm);
      throw e;
    }
  }

  /** vm.json as prepare() wrote it; undefined before that. */
  #readVm(): VmConfig | undefined {
    this.#vm ??= readVmFile(this.#l.vmFile);
    return this.#vm;
  }

  /** The VMM was started at some point (by this process or an earlier one). */
  #launched(): boolean {
    return this.#vmm !== undefined || recordedVmm(this.#ctx.resources.list(), this.id) !== undefined;
  }

  #settle(exit: ExitInfo): ExitInfo {
    return this.#records.settle(exit, !this.#destroyed);
  }

  /**
   * An image VM that reset or shut down on its own before its workload's exit was known
   * (a panic, the agent dying): the console's last lines say why.
   */
  #withConsole(exit: ExitInfo): ExitInfo {
    if (this.#records.exit() !== undefined || this.#records.stop() !== undefined) return exit;
    if ((exit.reason !== "reset" && exit.reason !== "shutdown") || !this.#readVm()?.agent) return exit;
    const tail = consoleTail(this.#l.consoleFile, CONSOLE_TAIL_LINES);
    if (tail === "") return exit;
    return { ...exit, detail: `${exit.detail ?? `the VM ${exit.reason === "reset" ? "reset" : "shut down"}`} before its workload ended; the console's last lines:\n${tail}` };
  }

  #assertUsable(): void {
    if (this.#destroyed) throw new VmctlError("FAILED_PRECONDITION", `${this.id} was destroyed`, { details: { serviceId: this.id } });
    if (this.#detached) throw new VmctlError("UNAVAILABLE", `the microvm target was closed`, { details: { serviceId: this.id } });
  }
}
