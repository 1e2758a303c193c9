// Which EC2 instance is a service's. Its ledger entries are intended before RunInstances
// (keyed by the client token, so a retry cannot make a second one), its id is added once
// known, and an instance made by a start that crashed before that is found by its tags.
import type { TargetContext } from "@vmctl/core/contract";
import type { Instances, InstanceView, RunParams } from "./instances.js";
import { INSTANCE_KIND, REPORTS_KIND, instanceTags, ledger, lookupTags, type InstanceResourceData } from "./naming.js";

export interface ServiceInstanceOptions {
  readonly serviceId: string;
  readonly ctx: TargetContext;
  readonly instances: Instances;
  readonly clientToken: string;
  readonly region?: string;
  /** The s3:// URL of the guest's reports: intended and released with the instance. */
  readonly reportsUrl: string;
  /** The instance id the ledger or record knows. */
  readonly instanceId?: string;
  /** The ledger holds the instance intent, so an instance may exist. */
  readonly intended?: boolean;
}

export class ServiceInstance {
  readonly #o: ServiceInstanceOptions;
  #id: string | undefined;
  #intended: boolean;

  constructor(o: ServiceInstanceOptions) {
    this.#o = o;
    this.#id = o.instanceId;
    this.#intended = (o.intended ?? false) || o.instanceId !== undefined;
  }

  /** The instance id, once there is one. */
  get id(): string | undefined {
    return this.#id;
  }

  /**
   * The service's instance: by id when known; else, when a start was intended (maybe
   * interrupted by a crash after RunInstances), by its tags.
   */
  async find(): Promise<InstanceView | undefined> {
    const { ctx, serviceId } = this.#o;
    if (this.#id) return this.#o.instances.describe(this.#id);
    if (!this.#intended) return undefined;
    const found = await this.#o.instances.findByTags(lookupTags(ctx.ownerLabels, serviceId));
    const instance = found.find((i) => i.state !== "terminated") ?? found[0];
    if (!instance) return undefined;
    if (found.length > 1) ctx.log.warn("aws-ec2 found several instances for one service", { serviceId, instances: found.map((i) => i.id) });
    this.#id = instance.id;
    ctx.resources.intend(ledger.instance(this.#data()));
    return instance;
  }

  /** Records in the ledger what a start is about to make: the reports, then the instance. */
  intend(): void {
    this.#o.ctx.resources.intend(ledger.reports(this.#o.reportsUrl));
    this.#o.ctx.resources.intend(ledger.instance(this.#data()));
    this.#intended = true;
  }

  /** Releases both ledger entries: nothing is made, or it is all gone. */
  forget(): void {
    this.#o.ctx.resources.release(INSTANCE_KIND, this.#o.clientToken);
    this.#o.ctx.resources.release(REPORTS_KIND, this.#o.reportsUrl);
    this.#intended = false;
  }

  /** RunInstances with the service's token and tags; after a failure the entries stay only when something may have been made after all. */
  async run(params: Omit<RunParams, "clientToken" | "tags">): Promise<InstanceView> {
    const { ctx, serviceId, instances } = this.#o;
    let instance: InstanceView;
    try {
      instance = await instances.run({ ...params, clientToken: this.#o.clientToken, tags: instanceTags(ctx.ownerLabels, serviceId) });
    } catch (err) {
      const made = await instances.findByTags(lookupTags(ctx.ownerLabels, serviceId)).catch(() => undefined);
      if (made?.length === 0) this.forget();
      throw err;
    }
    this.#id = instance.id;
    ctx.resources.intend(ledger.instance(this.#data()));
    return instance;
  }

  #data(): InstanceResourceData {
    return {
      clientToken: this.#o.clientToken,
      ...(this.#o.region ? { region: this.#o.region } : {}),
      ...(this.#id ? { instanceId: this.#id } : {}),
    };
  }
}
