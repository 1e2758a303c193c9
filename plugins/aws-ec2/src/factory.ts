// The aws-ec2 target: validates specs, probes the account at create time (endpoint,
// credentials, image, log bucket) so a bad setup fails before anything is made, and
// makes controllers.
import { existsSync } from "node:fs";
import { ValidationError } from "@vmctl/core/contract";
import type { Capabilities, ControllerRecord, Logger, OwnedThing, RunInput, ServiceFactory, TargetContext } from "@vmctl/core/contract";
import type { AwsClients } from "./clients.js";
import { Ec2Controller, type Ec2RecordData, type ServiceSettings } from "./controller.js";
import { INSTANCE_KIND, REPORTS_KIND, clientTokenFor, lookupTags, reportLocation, stoppedBeforeStartFile, type InstanceResourceData } from "./naming.js";
import type { Ec2TargetOptions } from "./options.js";
import { ownedInstances, regionsToAsk, removeOwnedInstance } from "./owned.js";
import { parseEc2Spec, type Ec2Spec } from "./spec.js";

export const EC2_CAPABILITIES: Capabilities = {
  exec: false,
  pause: false,
  // state().addresses lists the instance's private (and public) IP while it runs.
  network: true,
  volumes: false,
  logsFollow: true,
};

export class Ec2Factory implements ServiceFactory<Ec2Spec> {
  readonly target = "aws-ec2";
  readonly capabilities = EC2_CAPABILITIES;
  readonly #options: Ec2TargetOptions;
  readonly #log: Logger;
  /** Clients per region ("" = the SDK chain's region). */
  readonly #clients = new Map<string, AwsClients>();
  /** Buckets found (or made) by this factory: checked once, not at every create. */
  readonly #buckets = new Map<string, Promise<void>>();
  #sdk: Promise<typeof import("./aws.js")> | undefined;

  constructor(options: Ec2TargetOptions, log: Logger) {
    this.#options = options;
    this.#log = log;
  }

  validate(spec: unknown): Ec2Spec {
    const parsed = parseEc2Spec(spec);
    if (parsed.imageId === undefined && this.#options.imageId === undefined) {
      throw new ValidationError("imageId", "required: no default imageId is configured for the aws-ec2 target");
    }
    if (parsed.logBucket === undefined && this.#options.logBucket === undefined) {
      throw new ValidationError("logBucket", "required: no default logBucket is configured for the aws-ec2 target");
    }
    return parsed;
  }

  /** `vmctl run [AMI] -- CMD...`: the image is the AMI id, the command its args. */
  specFromRun(input: RunInput): unknown {
    // An instance in the cloud cannot see this host's files, and its disk goes with it.
    if (input.mounts.length > 0) throw new ValidationError("mounts", "an EC2 instance cannot mount this host's paths (-v)");
    if (input.copyOut.length > 0) throw new ValidationError("copyOut", "aws-ec2 cannot copy files out of an instance (--copy-out)");
    const env = { ...(input.spec.env as Record<string, string> | undefined), ...input.env };
    return {
      ...(input.image === undefined ? {} : { imageId: input.image }),
      ...(input.command.length > 0 ? { args: [...input.command] } : {}),
      ...input.spec,
      ...(Object.keys(env).length > 0 ? { env } : {}),
    };
  }

  /** Probes before it returns: unreachable endpoint, refused credentials, missing image or bucket fail here. */
  async create(id: string, spec: Ec2Spec, ctx: TargetContext): Promise<Ec2Controller> {
    const settings = this.#settings(spec);
    const bucket = spec.logBucket ?? this.#options.logBucket!;
    const sdk = await this.#loadSdk();
    const clients = this.#clientsFor(sdk, settings.region);
    const instances = new sdk.Instances(clients.ec2, clients.where);
    // Image first: it proves endpoint and credentials with a clear error before S3 is touched.
    await instances.probeImage(settings.imageId);
    await this.#bucket(sdk, clients, bucket);
    return new Ec2Controller({
      id,
      spec,
      ctx,
      settings,
      instances,
      reports: new sdk.Reports(clients.s3, clients.where, reportLocation(bucket, id)),
      clientToken: clientTokenFor(ctx.ownerLabels, id),
    });
  }

  async adopt(record: ControllerRecord, ctx: TargetContext): Promise<Ec2Controller | undefined> {
    // The spec was validated at create; the target's defaults may have changed since, so
    // what the record says it used (region, bucket) wins.
    const spec = record.spec as Ec2Spec;
    const data = isRecordData(record.data) ? record.data : undefined;
    const resources = [...record.resources, ...ctx.resources.list()];
    const intent = resources.find((r) => r.kind === INSTANCE_KIND);
    const intentData = (intent?.data ?? {}) as Partial<InstanceResourceData>;
    const region = data?.region ?? intentData.region ?? spec.region ?? this.#options.region;
    const settings = { ...this.#settings(spec), ...(region ? { region } : {}) };
    const sdk = await this.#loadSdk();
    const clients = this.#clientsFor(sdk, settings.region);
    const instances = new sdk.Instances(clients.ec2, clients.where);
    const location = data ? { bucket: data.bucket, prefix: data.prefix } : reportLocation(spec.logBucket ?? this.#options.logBucket ?? "", record.id);
    const instanceId = intentData.instanceId ?? data?.instanceId;
    const recorded = intent !== undefined || resources.some((r) => r.kind === REPORTS_KIND) || instanceId !== undefined;
    if (!recorded && !existsSync(stoppedBeforeStartFile(ctx.serviceDir))) {
      // Nothing in the ledger: an instance can only exist if a ledger was lost; look by tag.
      const found = await instances.findByTags(lookupTags(ctx.ownerLabels, record.id));
      if (found.length === 0) return undefined;
    }
    this.#log.debug("aws-ec2 adopting", { serviceId: record.id, instanceId });
    return new Ec2Controller({
      id: record.id,
      spec,
      ctx,
      settings,
      instances,
      reports: new sdk.Reports(clients.s3, clients.where, location),
      clientToken: data?.clientToken ?? intentData.clientToken ?? clientTokenFor(ctx.ownerLabels, record.id),
      ...(instanceId ? { instanceId } : {}),
      intended: true,
    });
  }

  /** Instances tagged with `owner` (owned.ts). */
  owned(owner: string): Promise<OwnedThing[]> {
    return ownedInstances((region) => this.#instancesIn(region), regionsToAsk(this.#options, this.#clients.keys()), owner);
  }

  removeOwned(thing: OwnedThing): Promise<void> {
    return removeOwnedInstance((region) => this.#instancesIn(region), thing);
  }

  async #instancesIn(region: string | undefined) {
    const sdk = await this.#loadSdk();
    const clients = this.#clientsFor(sdk, region);
    return new sdk.Instances(clients.ec2, clients.where);
  }

  async close(): Promise<void> {
    for (const c of this.#clients.values()) c.destroy();
    this.#clients.clear();
    this.#buckets.clear();
  }

  #settings(spec: Ec2Spec): ServiceSettings {
    const o = this.#options;
    const region = spec.region ?? o.region;
    return {
      ...(region ? { region } : {}),
      // validate() made sure one of the two is set (an adopted spec was validated at create).
      imageId: spec.imageId ?? o.imageId ?? "",
      instanceType: spec.instanceType ?? o.instanceType,
      shutdownBehavior: spec.shutdownBehavior ?? o.shutdownBehavior,
      reportExpirySeconds: spec.reportExpirySeconds ?? o.reportExpirySeconds,
      logFlushSeconds: o.logFlushSeconds,
      pollIntervalMs: o.pollIntervalMs,
      terminateWaitMs: o.terminateWaitMs,
    };
  }

  /** The SDK side of the target, loaded once, on the first create or adopt. */
  #loadSdk(): Promise<typeof import("./aws.js")> {
    // A failed load is not kept: the next create tries again.
    this.#sdk ??= import("./aws.js").catch((err: unknown) => {
      this.#sdk = undefined;
      throw err;
    });
    return this.#sdk;
  }

  #clientsFor(sdk: typeof import("./aws.js"), region: string | undefined): AwsClients {
    const key = region ?? "";
    let clients = this.#clients.get(key);
    if (!clients) {
      const o = this.#options;
      clients = sdk.makeClients({
        ...(region ? { region } : {}),
        ...(o.endpoint ? { endpoint: o.endpoint } : {}),
        ...(o.profile ? { profile: o.profile } : {}),
        forcePathStyle: o.forcePathStyle,
      });
      this.#clients.set(key, clients);
    }
    return clients;
  }

  #bucket(sdk: typeof import("./aws.js"), clients: AwsClients, bucket: string): Promise<void> {
    const key = `${clients.where}\0${bucket}`;
    let check = this.#buckets.get(key);
    if (!check) {
      check = sdk.ensureBucket(clients.s3, bucket, this.#options.createLogBucket, clients.where);
      this.#buckets.set(key, check);
      // A failure is not remembered: the next create asks again.
      check.catch(() => this.#buckets.delete(key));
    }
    return check;
  }
}

function isRecordData(value: unknown): value is Ec2RecordData {
  const v = value as Partial<Ec2RecordData> | null | undefined;
  return typeof v === "object" && v !== null && typeof v.clientToken === "string" && typeof v.bucket === "string" && typeof v.prefix === "string";
}
