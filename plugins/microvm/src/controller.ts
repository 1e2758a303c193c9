// One microvm service: one detached vmctl-vmm process, driven over its API socket. What
// must survive the orchestrator lives in the ledger (the VMM's pid + start time, its
// socket) and in files in ctx.serviceDir (console, exit, stop request; see layout.ts),
// so a controller made by adopt() in a new orchestrator process sees what the original
// one would have.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { dirname } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { isErrorCode, VmctlError } from "@vmctl/core/contract";
import { readFrom, writeAtomic } from "@vmctl/core/target-kit";
import type {
  ErrorCode,
  ExitInfo,
  JsonValue,
  LogChunk,
  LogOptions,
  ProgressSink,
  ServiceController,
  ServiceState,
  StopOptions,
  TargetContext,
} from "@vmctl/core/contract";
import { VmmClient, VmmError, type VmState } from "@vmctl/vmm-client";
import { ConsolePump } from "./console-log.js";
import { exitFromVm, lostExit, parseExit, serializeExit } from "./exit.js";
import { ledger, perVmFiles, recordedVmm, type RecordedVmm, type ServiceLayout } from "./layout.js";
import { DEFAULT_DISK_SIZE_MIB, type MicrovmSpec } from "./spec.js";
import { MIB, parseVmConfig, vmConfig, type VmConfig, type VmImage, type VmScratch } from "./vm-config.js";
import { isAlive, spawnDetached, terminate, vmmsServing, type ProcessRef } from "./vmm-process.js";

/** How often logs({ follow }) looks at the console file again. */
const POLL_MS = 50;
const DEFAULT_STOP_TIMEOUT_MS = 10_000;
const READY_TIMEOUT_MS = 30_000;
const RPC = { timeoutMs: 10_000 };

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

interface StopRecord {
  /** stop() came before the VM was ever started. */
  readonly beforeStart?: boolean;
  readonly at: string;
}

export class MicrovmController implements ServiceController {
  readonly id: string;
  readonly #spec: MicrovmSpec;
  readonly #ctx: TargetContext;
  readonly #binary: string;
  readonly #l: ServiceLayout;
  readonly #vmId: string;
  readonly #onDestroyed: ((c: MicrovmController) => void) | undefined;
  readonly #createdAt = new Date();
  /** The VMM process, once spawned (or found by adopt). */
  #vmm: ProcessRef | undefined;
  #client: VmmClient | undefined;
  #pump: ConsolePump | undefined;
  #follower: Promise<void> | undefined;
  #starting: Promise<void> | undefined;
  /** start() is between spawning the VMM and the VM running. */
  #startPending = false;
  #exit: ExitInfo | undefined;
  /** vm.json, once written or read. */
  #vm: VmConfig | undefined;
  /** The VMM's KVM is PVM (from its GetInfo): a KVM error then most likely means "not here". */
  #pvmHost = false;
  #destroyed = false;
  /** The factory closed (orchestrator shutdown): streams are cut, the VM runs on untouched. */
  #detached = false;

  constructor(options: MicrovmControllerOptions) {
    this.id = options.id;
    this.#spec = options.spec;
    this.#ctx = options.ctx;
    this.#binary = options.binary;
    this.#l = options.layout;
    this.#vmId = options.vmId;
    this.#onDestroyed = options.onDestroyed;
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

  /**
   * Checks that the host files start needs are there and writes down the VM as it will be
   * configured (vm.json, so adopt knows the service was made). With an image: the image
   * store resolves (pulling if needed, with `progress`) and pins it, and the VM's writable
   * layer is made — recorded in the ledger first. Idempotent: once vm.json exists it is the
   * VM, and nothing is resolved again (a restart boots the digest prepared here).
   */
  async prepare(progress?: ProgressSink): Promise<void> {
    this.#assertUsable();
    const files = [
      ["kernel", this.#spec.kernel],
      ...(this.#spec.initrd === undefined ? [] : [["initrd", this.#spec.initrd]]),
      ...(this.#spec.drives ?? []).map((d, i) => [`drives[${i}].path`, d.path]),
    ];
    for (const [field, path] of files) {
      if (!isFile(path as string)) throw this.#gone(field as string, path as string);
    }
    const prepared = this.#readVm();
    if (prepared !== undefined) {
      if (prepared.image !== undefined && prepared.scratch !== undefined) {
        if (!isFile(prepared.image.disk)) throw this.#gone("image", `${prepared.image.disk} (the base disk of ${prepared.image.digest})`);
        await this.#makeScratch(prepared.scratch);
      }
      return;
    }
    let resolved: { image: VmImage; scratch: VmScratch } | undefined;
    if (this.#spec.image !== undefined) {
      const record = await this.#ctx.images.use(this.#spec.image, progress);
      const image: VmImage = { reference: this.#spec.image, digest: record.digest, disk: record.disk, diskBytes: record.diskBytes };
      const scratch: VmScratch = { path: this.#l.scratchFile, sizeBytes: (this.#spec.diskSizeMib ?? DEFAULT_DISK_SIZE_MIB) * MIB };
      await this.#makeScratch(scratch);
      resolved = { image, scratch };
      this.#ctx.log.debug("microvm image prepared", { image: image.reference, digest: image.digest, disk: image.disk });
    }
    const vm = vmConfig(this.#vmId, this.#spec, resolved);
    this.#ctx.resources.intend(ledger.file(this.#l.vmFile));
    writeAtomic(this.#l.vmFile, `${JSON.stringify(vm, null, 2)}\n`);
    this.#vm = vm;
  }

  async start(): Promise<void> {
    this.#assertUsable();
    if (this.#starting) return this.#starting;
    if (this.#launched() || this.#known() || this.#readStop()?.beforeStart) return;
    this.#startPending = true;
    this.#starting = this.#start().finally(() => {
      this.#startPending = false;
    });
    return this.#starting;
  }

  async stop(options?: StopOptions): Promise<void> {
    const timeoutMs = options?.timeoutMs ?? DEFAULT_STOP_TIMEOUT_MS;
    if (this.#starting) await this.#starting.catch(() => undefined);
    const state = await this.state();
    if (state.phase === "exited") return;
    if (state.phase === "created") {
      this.#writeStop({ beforeStart: true, at: new Date().toISOString() });
      await this.state();
      return;
    }
    this.#writeStop({ at: new Date().toISOString() });
    const client = this.#client;
    try {
      if (!client) throw new VmmError("UNAVAILABLE", "no connection to the VMM");
      // Ctrl-Alt-Del, then a forced stop once the grace has passed (in the VMM).
      await client.shutdown(timeoutMs);
    } catch (err) {
      // The VMM does not answer: SIGTERM makes it force-stop the VM and exit.
      this.#ctx.log.warn("VMM did not take Shutdown; terminating it", { error: String(err) });
      if (this.#vmm) await terminate(this.#vmm);
    }
    await this.wait();
  }

  async state(): Promise<ServiceState> {
    const instance = this.#vmId;
    const known = this.#known();
    if (known) return exited(known, instance);
    if (this.#destroyed) {
      const at = new Date();
      return exited({ code: null, reason: "stopped", detail: "destroyed", at }, instance);
    }
    const stop = this.#readStop();
    if (!this.#launched()) {
      if (stop?.beforeStart) {
        return exited(this.#settle({ code: null, reason: "stopped", detail: "stopped before it was started", at: new Date(stop.at) }), instance);
      }
      return { phase: "created", instance, since: this.#createdAt };
    }
    const ref = this.#vmm;
    if (ref === undefined) {
      // Intended but not spawned yet: start() is on it, or it was interrupted (adopt settles that).
      return { phase: "starting", instance, since: this.#createdAt };
    }
    if (isAlive(ref) && this.#client) {
      let vm: VmState | undefined;
      try {
        vm = await this.#client.getState(RPC);
      } catch (err) {
        // Not answering yet (start() is waiting for its API), going away (SIGTERM), or stuck.
        if (this.#startPending) return { phase: "starting", pid: ref.pid, instance, since: this.#createdAt };
        if (isAlive(ref)) {
          throw new VmctlError("UNAVAILABLE", `VMM of ${this.id} does not answer: ${VmmError.from(err).message}`, {
            cause: err,
            details: { serviceId: this.id, target: "microvm" },
          });
        }
      }
      if (vm) {
        const pid = ref.pid;
        switch (vm.phase) {
          case "configuring":
            return { phase: "starting", pid, instance, since: vm.since };
          case "running":
            return { phase: stop ? "stopping" : "running", pid, instance, since: vm.since };
          case "paused":
            return { phase: stop ? "stopping" : "paused", pid, instance, since: vm.since };
          case "exited":
            return exited(
              this.#settle(exitFromVm(vm.exit ?? { reason: "unknown", code: 0, detail: "" }, { stopRequested: stop !== undefined, at: vm.since, pvmHost: this.#pvmHost })),
              instance,
            );
        }
      }
    }
    if (isAlive(ref)) {
      // Alive but not connected: only while detached.
      return { phase: stop ? "stopping" : "running", pid: ref.pid, instance, since: this.#createdAt };
    }
    // The VMM is gone. It may have recorded the exit on its way (another controller).
    return exited(this.#known() ?? this.#settle(lostExit(new Date())), instance);
  }

  async *logs(options?: LogOptions): AsyncIterable<LogChunk> {
    const follow = options?.follow ?? false;
    let offset = 0;
    for (;;) {
      // Decide before reading, so the last read after the end drains everything.
      const done = !follow || this.#detached || this.#destroyed || (this.#known() !== undefined && this.#pump === undefined);
      for await (const data of readFrom(this.#l.consoleFile, offset)) {
        offset += data.byteLength;
        yield { stream: "console", data, time: new Date() };
      }
      if (done) return;
      await sleep(POLL_MS);
    }
  }

  /**
   * The exit, once the VMM that ran the VM is retired too: whoever learns the exit from
   * here (the engine, `vmctl run`) never sees an exited VM whose VMM still runs.
   */
  async wait(): Promise<ExitInfo> {
    const exit = await this.#waitExit();
    await this.#follower;
    return exit;
  }

  async #waitExit(): Promise<ExitInfo> {
    for (;;) {
      if (this.#detached) {
        throw new VmctlError("CANCELLED", `stopped following ${this.id}: the microvm target was closed`, {
          details: { serviceId: this.id, target: "microvm" },
        });
      }
      const state = await this.state().catch(() => undefined);
      if (state?.exit) return state.exit;
      const client = this.#client;
      if (client && state !== undefined && state.phase !== "created") {
        // The state stream ends when the VM exits, or errors when the VMM goes away.
        await client.waitExit().catch(() => undefined);
        if (!this.#known()) await sleep(POLL_MS);
      } else {
        await sleep(POLL_MS * 2);
      }
    }
  }

  async pause(): Promise<void> {
    const state = await this.state();
    if (state.phase === "paused") return;
    if (state.phase !== "running" || !this.#client) {
      throw new VmctlError("FAILED_PRECONDITION", `cannot pause ${this.id}: it is ${state.phase}`, { details: { serviceId: this.id } });
    }
    await this.#client.pause(RPC).catch((err: unknown) => {
      throw vmctlError(err, `pausing ${this.id}`, this.id);
    });
  }

  async resume(): Promise<void> {
    const state = await this.state();
    if (state.phase === "running") return;
    if (state.phase !== "paused" || !this.#client) {
      throw new VmctlError("FAILED_PRECONDITION", `cannot resume ${this.id}: it is ${state.phase}`, { details: { serviceId: this.id } });
    }
    await this.#client.resume(RPC).catch((err: unknown) => {
      throw vmctlError(err, `resuming ${this.id}`, this.id);
    });
  }

  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    if (this.#starting) await this.#starting.catch(() => undefined);
    const res = this.#ctx.resources;
    const state = await this.state().catch(() => undefined);
    if (state && state.phase !== "exited" && state.phase !== "created" && this.#client) {
      // Force it now, through the API, so the exit is learned and kept as "stopped".
      this.#writeStop({ at: new Date().toISOString() });
      await this.#client.shutdown(0, { timeoutMs: 5000 }).catch(() => undefined);
      await this.state().catch(() => undefined);
    }
    this.#destroyed = true;
    await this.#disconnect();
    if (this.#vmm) await terminate(this.#vmm);
    // A VMM whose pid was never recorded (killed between spawn and ledger) is found by its socket.
    for (const stray of vmmsServing(this.#l.socketPath)) await terminate(stray);
    rmSync(this.#l.socketPath, { force: true });
    res.release("socket", this.#l.socketPath);
    res.release(ledger.vmm(this.id, this.#l.socketPath).kind, ledger.vmm(this.id, this.#l.socketPath).key);
    for (const file of perVmFiles(this.#l)) {
      rmSync(file, { force: true });
      res.release("file", file);
    }
    this.#onDestroyed?.(this);
    this.#ctx.log.debug("microvm destroyed", { vmId: this.#vmId });
  }

  record(): JsonValue {
    let image: VmImage | undefined;
    try {
      image = this.#readVm()?.image;
    } catch {
      // A broken vm.json is start()'s to report.
    }
    return {
      vmId: this.#vmId,
      socket: this.#l.socketPath,
      vmm: this.#vmm ? { pid: this.#vmm.pid, startTime: this.#vmm.startTime } : null,
      ...(image === undefined ? {} : { image: { digest: image.digest, disk: image.disk } }),
    };
  }

  // ---- for the factory ----

  /**
   * adopt(): reconnects to the VMM the ledger names when it still runs (same pid and
   * start time, or found by its socket when the pid was never recorded); otherwise the
   * controller is dead and reports the persisted exit (or "lost"). A start that was
   * interrupted before the VM ran is finished off: its VMM is stopped, the exit "failed".
   */
  async reattach(recorded: RecordedVmm | undefined): Promise<void> {
    if (recorded === undefined) return;
    let ref = recorded.ref && isAlive(recorded.ref) ? recorded.ref : undefined;
    if (ref === undefined) {
      const found = vmmsServing(this.#l.socketPath)[0];
      if (found) {
        ref = found;
        this.#ctx.resources.intend(ledger.vmm(this.id, this.#l.socketPath, found));
      }
    }
    if (ref === undefined) {
      // Dead: state() reports the persisted exit, or "lost".
      this.#vmm = recorded.ref;
      if (recorded.ref === undefined) {
        this.#settle({ code: null, reason: "failed", detail: "the start was interrupted before the VMM ran", at: new Date() });
      }
      return;
    }
    this.#vmm = ref;
    const client = new VmmClient(this.#l.socketPath);
    this.#client = client;
    let vm: VmState;
    try {
      vm = await this.#whenReady(client, ref, 5000).then(() => client.getState(RPC));
    } catch (err) {
      this.#client = undefined;
      client.close();
      // A VMM found alive may be on its way out (e.g. stopped after its VM exited):
      // gone by now, it is simply dead, and state() reports the persisted exit.
      if (!isAlive(ref)) return;
      throw vmctlError(err, `reconnecting to the VMM of ${this.id}`, this.id);
    }
    if (vm.phase === "configuring" || (this.#known() && vm.phase !== "exited")) {
      this.#settle({
        code: null,
        reason: "failed",
        detail: "the orchestrator stopped while starting the VM; it never ran",
        at: new Date(),
      });
      await this.#disconnect();
      await terminate(ref);
      return;
    }
    this.#follow();
    // Exited while nobody followed it: retire the VMM before the engine reads the exit.
    if (vm.phase === "exited") await this.#follower;
  }

  /** Cuts the streams and the connection; the VM and its VMM run on (orchestrator shutdown). */
  async detach(): Promise<void> {
    this.#detached = true;
    await this.#disconnect();
  }

  // ---- internals ----

  async #start(): Promise<void> {
    await this.prepare();
    const vm = this.#readVm();
    if (vm === undefined) throw new VmctlError("INTERNAL", `${this.#l.vmFile} vanished after prepare()`, { details: { serviceId: this.id } });
    const l = this.#l;
    const res = this.#ctx.resources;
    if (dirname(l.socketPath) !== l.serviceDir) mkdirSync(dirname(l.socketPath), { recursive: true, mode: 0o700 });
    // Recorded before they exist, so whatever happens next they can be found and freed.
    res.intend(ledger.file(l.consoleFile));
    res.intend(ledger.file(l.vmmLogFile));
    res.intend(ledger.socket(l.socketPath));
    res.intend(ledger.vmm(this.id, l.socketPath));
    rmSync(l.socketPath, { force: true });
    let ref: ProcessRef | undefined;
    try {
      ref = await spawnDetached({
        binary: this.#binary,
        socketPath: l.socketPath,
        vmId: this.#vmId,
        logFile: l.vmmLogFile,
        cwd: l.serviceDir,
        labels: this.#ctx.ownerLabels,
      });
      this.#vmm = ref;
      res.intend(ledger.vmm(this.id, l.socketPath, ref));
      writeAtomic(l.vmmFile, `${JSON.stringify({ pid: ref.pid, startTime: ref.startTime, socket: l.socketPath })}\n`);
      this.#ctx.log.debug("vmctl-vmm started", { pid: ref.pid, socket: l.socketPath });

      const client = new VmmClient(l.socketPath);
      this.#client = client;
      await this.#whenReady(client, ref, READY_TIMEOUT_MS);
      await client.putMachineConfig({ vcpuCount: vm.vcpus, memSizeMib: vm.memoryMib }, RPC);
      await client.putBootSource({ kernelImagePath: vm.kernel, bootArgs: vm.bootArgs, ...(vm.initrd === undefined ? {} : { initrdPath: vm.initrd }) }, RPC);
      // In vm.json's order: with an image, rootfs (/dev/vda) and scratch (/dev/vdb) first.
      for (const d of vm.drives) {
        await client.putDrive({ driveId: d.id, pathOnHost: d.path, isReadOnly: d.readOnly ?? false, isRootDevice: d.root ?? false }, RPC);
      }
      // Follow the console from before the first instruction runs.
      this.#follow();
      await client.start(RPC);
    } catch (err) {
      const e = vmctlError(err, `starting the VM of ${this.id}`, this.id);
      this.#settle({ code: null, reason: "failed", detail: e.message, at: new Date() });
      await this.#disconnect();
      if (ref) await terminate(ref);
      throw e;
    }
  }

  /**
   * The VM's writable layer, unless it exists: ledger first, then made (a few ms: sparse,
   * pre-formatted; the engine clears a partial file an interrupted attempt left).
   */
  async #makeScratch(scratch: VmScratch): Promise<void> {
    if (existsSync(scratch.path)) return;
    this.#ctx.resources.intend(ledger.file(scratch.path));
    await this.#ctx.images.createWritableLayer(scratch.path, scratch.sizeBytes);
  }

  /** vm.json as prepare() wrote it; undefined before that. */
  #readVm(): VmConfig | undefined {
    if (this.#vm) return this.#vm;
    let text: string;
    try {
      text = readFileSync(this.#l.vmFile, "utf8");
    } catch {
      return undefined;
    }
    this.#vm = parseVmConfig(text, this.#l.vmFile);
    return this.#vm;
  }

  #gone(field: string, path: string): VmctlError {
    return new VmctlError("FAILED_PRECONDITION", `${field}: ${path} is not a file any more`, {
      details: { serviceId: this.id, target: "microvm" },
    });
  }

  /** Follows the running VM: the console into its file, and the exit (then retires the VMM). */
  #follow(): void {
    const client = this.#client;
    if (!client || this.#detached) return;
    this.#pump ??= new ConsolePump(client, this.#l.consoleFile, this.#ctx.log);
    this.#follower ??= this.#waitExit().then(
      () =>
        this.#retire().catch((err: unknown) => {
          this.#ctx.log.warn("could not retire the VMM after its VM exited", { error: String(err) });
        }),
      // Cut off (detach): nothing to retire; wait() reports the cancel itself.
      () => undefined,
    );
  }

  /**
   * After the exit is on disk and the console drained, the VMM has nothing more to give:
   * stop it (freeing its memory) and release its process and socket.
   */
  async #retire(): Promise<void> {
    await this.#pump?.done;
    if (this.#detached || this.#destroyed) return;
    this.#pump = undefined;
    this.#client?.close();
    this.#client = undefined;
    if (this.#vmm) await terminate(this.#vmm);
    if (this.#detached || this.#destroyed) return;
    rmSync(this.#l.socketPath, { force: true });
    this.#ctx.resources.release("socket", this.#l.socketPath);
    const entry = ledger.vmm(this.id, this.#l.socketPath);
    this.#ctx.resources.release(entry.kind, entry.key);
  }

  async #disconnect(): Promise<void> {
    const pump = this.#pump;
    pump?.stop();
    this.#client?.close();
    this.#client = undefined;
    await pump?.done;
    this.#pump = undefined;
  }

  async #whenReady(client: VmmClient, ref: ProcessRef, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (let delay = 1; ; delay = Math.min(delay * 2, 50)) {
      if (!isAlive(ref)) {
        throw new VmctlError("UNAVAILABLE", `vmctl-vmm exited before its API was ready: ${lastLine(this.#l.vmmLogFile)}`, {
          details: { serviceId: this.id, target: "microvm" },
        });
      }
      try {
        this.#pvmHost = (await client.getInfo({ timeoutMs: 1000 })).kvm.pvm;
        return;
      } catch (err) {
        const e = VmmError.from(err);
        // Not listening yet: UNAVAILABLE, or DEADLINE_EXCEEDED while grpc-js waits to connect.
        if ((e.code !== "UNAVAILABLE" && e.code !== "DEADLINE_EXCEEDED") || Date.now() > deadline) throw e;
      }
      await sleep(delay);
    }
  }

  /** The VMM was started at some point (by this process or an earlier one). */
  #launched(): boolean {
    return this.#vmm !== undefined || recordedVmm(this.#ctx.resources.list(), this.id) !== undefined;
  }

  /** The exit, if it is known here or was persisted (by this or an earlier controller). */
  #known(): ExitInfo | undefined {
    if (this.#exit) return this.#exit;
    try {
      const exit = parseExit(readFileSync(this.#l.exitFile, "utf8"));
      if (exit) this.#exit = exit;
      return exit;
    } catch {
      return undefined;
    }
  }

  /** Keeps the exit, first one wins, and persists it so an adopt after the VMM is gone still knows it. */
  #settle(exit: ExitInfo): ExitInfo {
    const known = this.#known();
    if (known) return known;
    this.#exit = exit;
    if (!this.#destroyed) {
      try {
        writeAtomic(this.#l.exitFile, serializeExit(exit));
      } catch (err) {
        this.#ctx.log.warn("could not persist the exit", { error: String(err) });
      }
    }
    return exit;
  }

  #readStop(): StopRecord | undefined {
    try {
      return JSON.parse(readFileSync(this.#l.stopFile, "utf8")) as StopRecord;
    } catch {
      return undefined;
    }
  }

  #writeStop(stop: StopRecord): void {
    if (this.#readStop()) return;
    writeAtomic(this.#l.stopFile, `${JSON.stringify(stop)}\n`);
  }

  #assertUsable(): void {
    if (this.#destroyed) {
      throw new VmctlError("FAILED_PRECONDITION", `${this.id} was destroyed`, { details: { serviceId: this.id } });
    }
    if (this.#detached) {
      throw new VmctlError("UNAVAILABLE", `the microvm target was closed`, { details: { serviceId: this.id } });
    }
  }
}

function exited(exit: ExitInfo, instance: string): ServiceState {
  return { phase: "exited", exit, instance, since: exit.at };
}


/** A VMM (or local) failure as the one error class, keeping its kind. */
function vmctlError(err: unknown, context: string, serviceId: string): VmctlError {
  if (err instanceof VmctlError) return err;
  if (err instanceof VmmError) {
    const code: ErrorCode = isErrorCode(err.code) ? err.code : "INTERNAL";
    return new VmctlError(code, `${context}: ${err.message}`, { cause: err, details: { serviceId, target: "microvm" } });
  }
  return VmctlError.from(err, context);
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function lastLine(file: string): string {
  try {
    return readFileSync(file, "utf8").trim().split("\n").at(-1) ?? "";
  } catch {
    return "";
  }
}
