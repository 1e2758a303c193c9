// The EC2 calls the target makes, over one client, each failure a VmctlError through
// awsError. Instances come back as plain `InstanceView`s so no SDK type leaks further.
import {
  CreateTagsCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  RunInstancesCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
  type EC2Client,
  type Instance,
  type _InstanceType,
} from "@aws-sdk/client-ec2";
import { VmctlError } from "@vmctl/core/contract";
import { waitFor } from "@vmctl/core/target-kit";
import { aws, awsErrorName } from "./clients.js";
import type { ShutdownBehavior } from "./spec.js";

export { SERVICE_TAG, STOP_TAG } from "./naming.js";

export type InstanceStateName = "pending" | "running" | "stopping" | "stopped" | "shutting-down" | "terminated";

export interface InstanceView {
  readonly id: string;
  readonly state: InstanceStateName;
  /** Why it is in that state ("Client.UserInitiatedShutdown: ..."), when EC2 says. */
  readonly stateReason?: string;
  readonly launchTime?: Date;
  readonly privateIp?: string;
  readonly publicIp?: string;
  readonly tags: Readonly<Record<string, string>>;
}

export interface RunParams {
  readonly clientToken: string;
  readonly imageId: string;
  readonly instanceType: string;
  readonly userData: string;
  readonly tags: Readonly<Record<string, string>>;
  readonly shutdownBehavior: ShutdownBehavior;
  readonly subnetId?: string;
  readonly securityGroupIds?: readonly string[];
  readonly keyName?: string;
}

export class Instances {
  readonly #ec2: EC2Client;
  readonly #where: string;

  constructor(ec2: EC2Client, where: string) {
    this.#ec2 = ec2;
    this.#where = where;
  }

  /** A cheap call that proves endpoint, credentials and image at once. NOT_FOUND for a missing AMI. */
  async probeImage(imageId: string): Promise<void> {
    const out = await aws(`EC2 DescribeImages ${imageId}`, this.#where, () =>
      this.#ec2.send(new DescribeImagesCommand({ ImageIds: [imageId] })),
    );
    if (!out.Images?.some((i) => i.ImageId === imageId)) {
      throw new VmctlError("NOT_FOUND", `image ${imageId} was not found at ${this.#where}`, { details: { target: "aws-ec2", field: "imageId" } });
    }
  }

  /** The instance, or undefined when EC2 no longer knows it. */
  async describe(id: string): Promise<InstanceView | undefined> {
    try {
      const out = await this.#ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }));
      const found = out.Reservations?.flatMap((r) => r.Instances ?? []).find((i) => i.InstanceId === id);
      return found ? view(found) : undefined;
    } catch (err) {
      if (awsErrorName(err) === "InvalidInstanceID.NotFound") return undefined;
      return aws(`EC2 DescribeInstances ${id}`, this.#where, () => Promise.reject(err));
    }
  }

  /** Instances carrying every one of `tags`, in any state, newest first. */
  async findByTags(tags: Readonly<Record<string, string>>): Promise<InstanceView[]> {
    const filters = Object.entries(tags).map(([k, v]) => ({ Name: `tag:${k}`, Values: [v] }));
    const found: InstanceView[] = [];
    let next: string | undefined;
    do {
      const out = await aws("EC2 DescribeInstances by tag", this.#where, () =>
        this.#ec2.send(new DescribeInstancesCommand({ Filters: filters, ...(next ? { NextToken: next } : {}) })),
      );
      for (const r of out.Reservations ?? []) for (const i of r.Instances ?? []) found.push(view(i));
      next = out.NextToken;
    } while (next);
    return found.sort((a, b) => (b.launchTime?.getTime() ?? 0) - (a.launchTime?.getTime() ?? 0));
  }

  async run(p: RunParams): Promise<InstanceView> {
    const tagList = Object.entries(p.tags).map(([Key, Value]) => ({ Key, Value }));
    const out = await aws("EC2 RunInstances", this.#where, () =>
      this.#ec2.send(
        new RunInstancesCommand({
          ImageId: p.imageId,
          InstanceType: p.instanceType as _InstanceType,
          MinCount: 1,
          MaxCount: 1,
          ClientToken: p.clientToken,
          UserData: Buffer.from(p.userData).toString("base64"),
          InstanceInitiatedShutdownBehavior: p.shutdownBehavior,
          TagSpecifications: [
            { ResourceType: "instance", Tags: tagList },
            { ResourceType: "volume", Tags: tagList },
          ],
          ...(p.subnetId ? { SubnetId: p.subnetId } : {}),
          ...(p.securityGroupIds?.length ? { SecurityGroupIds: [...p.securityGroupIds] } : {}),
          ...(p.keyName ? { KeyName: p.keyName } : {}),
        }),
      ),
    );
    const instance = out.Instances?.[0];
    if (!instance?.InstanceId) throw new VmctlError("INTERNAL", `EC2 RunInstances at ${this.#where} returned no instance`);
    return view(instance);
  }

  /** StopInstances; `force` skips the guest's shutdown (a hard power-off). */
  async stop(id: string, force: boolean): Promise<void> {
    await aws(`EC2 StopInstances ${id}${force ? " (force)" : ""}`, this.#where, () =>
      this.#ec2.send(new StopInstancesCommand({ InstanceIds: [id], Force: force })),
    );
  }

  async terminate(id: string): Promise<void> {
    try {
      await this.#ec2.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
    } catch (err) {
      if (awsErrorName(err) === "InvalidInstanceID.NotFound") return;
      await aws(`EC2 TerminateInstances ${id}`, this.#where, () => Promise.reject(err));
    }
  }

  /** Resolves true once EC2 reports the instance terminated (or forgets it), false if it has not after `timeoutMs`. */
  async untilTerminated(id: string, timeoutMs: number, pollMs: number): Promise<boolean> {
    const gone = async (): Promise<true | undefined> => {
      const instance = await this.describe(id);
      return !instance || instance.state === "terminated" ? true : undefined;
    };
    return (await waitFor(gone, { timeoutMs, pollMs })) ?? false;
  }


  async tag(id: string, key: string, value: string): Promise<void> {
    await aws(`EC2 CreateTags ${id}`, this.#where, () =>
      this.#ec2.send(new CreateTagsCommand({ Resources: [id], Tags: [{ Key: key, Value: value }] })),
    );
  }
}

function view(i: Instance): InstanceView {
  const tags: Record<string, string> = {};
  for (const t of i.Tags ?? []) if (t.Key !== undefined) tags[t.Key] = t.Value ?? "";
  return {
    id: i.InstanceId ?? "",
    state: (i.State?.Name ?? "pending") as InstanceStateName,
    ...(i.StateReason?.Message ? { stateReason: i.StateReason.Message } : {}),
    ...(i.LaunchTime ? { launchTime: i.LaunchTime } : {}),
    ...(i.PrivateIpAddress ? { privateIp: i.PrivateIpAddress } : {}),
    ...(i.PublicIpAddress ? { publicIp: i.PublicIpAddress } : {}),
    tags,
  };
}
