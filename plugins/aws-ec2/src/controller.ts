// One aws-ec2 service: an EC2 instance whose user data runs the command and reports its
// output and exit status to S3. Its state lives on the target (the instance, its tags,
// the S3 objects) and in the ledger, so a controller made by adopt() in a new
// orchestrator process sees exactly what the original one would have.
import { existsSync, writeFileSync } from "node:fs";
import { VmctlError } from "@vmctl/core/contract";
import type { ExitInfo, JsonValue, LogChunk, LogOptions, ServiceController, ServiceState, StopOptions, TargetContext } from "@vmctl/core/contract";
import { waitFor } from "@vmctl/core/target-kit";
import { interpret } from "./exit.js";
import type { Instances, InstanceView } from "./instances.js";
import { STOP_TAG, stoppedBeforeStartFile } from "./naming.js";
import { reportChunks } from "./report-logs.js";
import type { Reports } from "./reports.js";
import { ServiceInstance } from "./service-instance.js";
import type { Ec2Spec, ShutdownBehavior } from "./spec.js";
import { guestScript, MAX_USER_DATA_BYTES } from "./user-data.js";

const DEFAULT_STOP_TIMEOUT_MS = 10_000;

/** Everything the controller needs from the spec and the target options, resolved. */
export interface ServiceSettings {
  readonly region?: string;
  readonly imageId: string;
  readonly instanceType: string;
  readonly shutdownBehavior: ShutdownBehavior;
  readonly reportExpirySeconds: number;
  readonly logFlushSeconds: number;
  readonly pollIntervalMs: number;
  readonly terminateWaitMs: number;
}

export interface Ec2ControllerOptions {
  readonly id: string;
  readonly spec: Ec2Spec;
  readonly ctx: TargetContext;
  readonly settings: ServiceSettings;
  readonly instances: Instances;
  readonly reports: Reports;
  readonly clientToken: string;
  /** For adopt(): the instance id the ledger or record knows. */
  readonly instanceId?: string;
  /** For adopt(): the ledger holds the instance intent, so an instance may exist. */
  readonly intended?: boolean;
}

/** What record() returns and adopt() reads back. */
export interface Ec2RecordData {
  readonly clientToken: string;
  readonly instanceId?: string;
  readonly region?: string;
  readonly bucket: string;
  readonly prefix: string;
}

export class Ec2Controller implements ServiceController {
  readonly id: string;
  readonly #spec: Ec2Spec;
  readonly #ctx: TargetContext;
  readonly #s: ServiceSettings;
  readonly #instances: Instances;
  readonly #reports: Reports;
  readonly #clientToken: string;
  readonly #instance: ServiceInstance;
  readonly #createdAt = new Date();
  #stopRequested = false;
  #exit: ExitInfo | undefined;
  #destroyed = false;
  #starting: Promise<void> | undefined;

  constructor(o: Ec2ControllerOptions) {
    this.id = o.id;
    this.#spec = o.spec;
    this.#ctx = o.ctx;
    this.#s = o.settings;
    this.#instances = o.instances;
    this.#reports = o.reports;
    this.#clientToken = o.clientToken;
    this.#instance = new ServiceInstance({
      serviceId: o.id,
      ctx: o.ctx,
      instances: o.instances,
      clientToken: o.clientToken,
      reportsUrl: o.reports.url,
      ...(o.settings.region ? { region: o.settings.region } : {}),
      ...(o.instanceId !== undefined ? { instanceId: o.instanceId } : {}),
      ...(o.intended !== undefined ? { intended: o.intended } : {}),
    });
  }

  /** The EC2 instance id, once there is one. */
  get instanceId(): string | undefined {
    return this.#instance.id;
  }

  /** Nothing to pull: the AMI is on EC2's side and create() already checked it. */
  async prepare(): Promise<void> {
    this.#assertNotDestroyed();
  }

  async start(): Promise<void> {
    this.#assertNotDestroyed();
    this.#starting ??= this.#start().finally(() => {
      this.#starting = undefined;
    });
    return this.#starting;
  }

  async stop(options?: StopOptions): Promise<void> {
    const timeoutMs = options?.timeoutMs ?? DEFAULT_STOP_TIMEOUT_MS;
    if (this.#starting) await this.#starting.catch(() => undefined);
    let state = await this.state();
    if (state.phase === "exited") return;
    if (state.phase === "created") {
      writeFileSync(stoppedBeforeStartFile(this.#ctx.serviceDir), new Date().toISOString());
      return;
    }
    // A pending instance cannot be stopped yet: wait for it, but within the grace period.
    const pastStarting = async (): Promise<ServiceState | undefined> => {
      const now = await this.state();
      return now.phase === "starting" ? undefined : now;
    };
    if (state.phase === "starting") state = (await waitFor(pastStarting, { timeoutMs, pollMs: this.#s.pollIntervalMs })) ?? state;
    if (state.phase === "exited") return;
    const id = this.#instance.id!;
    this.#stopRequested = true;
    // The tag first: whoever reads the instance later (an adopting process) knows vmctl stopped it.
    await this.#instances.tag(id, STOP_TAG, new Date().toISOString());
    if (state.phase === "starting") {
      // Still pending after the grace: StopInstances cannot act on it, TerminateInstances can.
      this.#ctx.log.info("aws-ec2 instance still pending at the stop deadline; terminating it", { serviceId: this.id, instanceId: id, timeoutMs });
      await this.#instances.terminate(id);
      await this.wait();
      return;
    }
    await this.#instances.stop(id, false);
    if (await this.#exitedWithin(timeoutMs)) return;
    this.#ctx.log.info("aws-ec2 instance did not stop in time; forcing it", { serviceId: this.id, instanceId: id, timeoutMs });
    await this.#instances.stop(id, true).catch(async (err: unknown) => {
      if ((await this.state()).phase !== "exited") throw err;
    });
    await this.wait();
  }

  async state(): Promise<ServiceState> {
    if (this.#exit) return this.#exited(this.#exit);
    if (this.#destroyed) {
      const at = new Date();
      return { phase: "exited", exit: { code: null, reason: "stopped", detail: "destroyed", at }, since: at };
    }
    const instance = await this.#instance.find();
    // Read the report after the instance: a stopped instance's guest has uploaded all it will.
    const reported = this.#instance.id !== undefined ? await this.#reports.readExit() : undefined;
    const stopRequested = this.#stopRequested || (instance?.tags[STOP_TAG] ?? "") !== "";
    const now = new Date();
    const r = interpret({
      instance,
      launched: this.#instance.id !== undefined,
      reported,
      stopRequested,
      stoppedBeforeStart: existsSync(stoppedBeforeStartFile(this.#ctx.serviceDir)),
      now,
    });
    if (r.exit) {
      this.#exit = r.exit;
      return this.#exited(r.exit, instance);
    }
    const addresses = [instance?.privateIp, instance?.publicIp].filter((a): a is string => a !== undefined);
    return {
      phase: r.phase,
      ...(instance ? { instance: instance.id } : {}),
      ...(r.phase === "running" && addresses.length > 0 ? { addresses } : {}),
      since: instance?.launchTime ?? this.#createdAt,
    };
  }

  async *logs(options?: LogOptions): AsyncIterable<LogChunk> {
    const ended = async (): Promise<boolean> => (await this.state()).phase === "exited";
    yield* reportChunks(this.#reports, { follow: options?.follow ?? false, ended, pollMs: this.#s.pollIntervalMs });
  }

  async wait(): Promise<ExitInfo> {
    return (await waitFor(async () => (await this.state()).exit, { pollMs: this.#s.pollIntervalMs }))!;
  }

  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    if (this.#starting) await this.#starting.catch(() => undefined);
    // Learn the exit (if any) before the report is deleted, so state() keeps telling it.
    await this.state().catch(() => undefined);
    const instance = await this.#instance.find();
    if (instance && instance.state !== "terminated") {
      await this.#instances.terminate(instance.id);
      if (!(await this.#instances.untilTerminated(instance.id, this.#s.terminateWaitMs, this.#s.pollIntervalMs))) {
        this.#ctx.log.warn("aws-ec2 instance not terminated in time; deleting its output anyway", { serviceId: this.id, instanceId: instance.id });
      }
    }
    // Only once the instance is gone: a live guest could upload again after the delete.
    await this.#reports.deleteAll();
    this.#instance.forget();
    this.#destroyed = true;
    this.#ctx.log.debug("aws-ec2 service destroyed", { serviceId: this.id, instanceId: this.#instance.id });
  }

  record(): JsonValue {
    const data: Ec2RecordData = {
      clientToken: this.#clientToken,
      ...(this.#instance.id ? { instanceId: this.#instance.id } : {}),
      ...(this.#s.region ? { region: this.#s.region } : {}),
      bucket: this.#reports.location.bucket,
      prefix: this.#reports.location.prefix,
    };
    return { ...data };
  }

  // ---- internals ----

  async #start(): Promise<void> {
    if (existsSync(stoppedBeforeStartFile(this.#ctx.serviceDir))) return;
    // Idempotent across processes: an instance already made for this service is kept.
    if (await this.#instance.find()) return;
    this.#instance.intend();
    const userData = guestScript({
      serviceId: this.id,
      args: this.#spec.args,
      ...(this.#spec.env ? { env: this.#spec.env } : {}),
      urls: await this.#reports.presign(this.#s.reportExpirySeconds),
      flushSeconds: this.#s.logFlushSeconds,
    });
    const size = Buffer.byteLength(userData);
    if (size > MAX_USER_DATA_BYTES) {
      this.#instance.forget();
      throw new VmctlError("INVALID_ARGUMENT", `the guest script for ${this.id} is ${size} bytes; EC2 takes at most ${MAX_USER_DATA_BYTES}: shorten args or env`, {
        details: { field: "spec.args", serviceId: this.id, target: "aws-ec2" },
      });
    }
    const instance = await this.#instance.run({
      imageId: this.#s.imageId,
      instanceType: this.#s.instanceType,
      userData,
      shutdownBehavior: this.#s.shutdownBehavior,
      ...(this.#spec.subnetId ? { subnetId: this.#spec.subnetId } : {}),
      ...(this.#spec.securityGroupIds ? { securityGroupIds: this.#spec.securityGroupIds } : {}),
      ...(this.#spec.keyName ? { keyName: this.#spec.keyName } : {}),
    });
    this.#ctx.log.debug("aws-ec2 instance launched", { serviceId: this.id, instanceId: instance.id });
  }

  #exited(exit: ExitInfo, instance?: InstanceView): ServiceState {
    const id = instance?.id ?? this.#instance.id;
    return { phase: "exited", exit, ...(id ? { instance: id } : {}), since: exit.at };
  }

  async #exitedWithin(ms: number): Promise<boolean> {
    return (await waitFor(async () => (await this.state()).exit, { timeoutMs: ms, pollMs: this.#s.pollIntervalMs })) !== undefined;
  }

  #assertNotDestroyed(): void {
    if (this.#destroyed) {
      throw new VmctlError("FAILED_PRECONDITION", `${this.id} was destroyed`, { details: { serviceId: this.id, target: "aws-ec2" } });
    }
  }
}
