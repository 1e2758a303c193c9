// Reaping (ServiceFactory.owned / removeOwned) for the aws-ec2 target: the instances
// tagged with an owner's label, in the regions the factory names (its configured one,
// those its services used). Terminated (and terminating) instances are gone already.
// The output objects in S3 carry no tags, and are left alone.
import { labelledOwner, OWNER_LABEL, type OwnedThing } from "@vmctl/core/contract";
import type { InstanceView, Instances } from "./instances.js";
import { INSTANCE_KIND } from "./naming.js";
import type { Ec2TargetOptions } from "./options.js";

/** The EC2 calls of one region ("" or undefined: the SDK chain's region). */
export type InstancesIn = (region: string | undefined) => Promise<Instances>;

/**
 * The regions to ask: those the target's services used since start-up (`used`: the
 * factory's client keys, "" for the SDK chain's) and, once the target is configured at
 * all, its default region. A host that never set up aws-ec2 asks AWS nothing.
 */
export function regionsToAsk(options: Ec2TargetOptions, used: Iterable<string>): (string | undefined)[] {
  const configured = options.region !== undefined || options.endpoint !== undefined || options.logBucket !== undefined || options.imageId !== undefined;
  return [...(configured ? [options.region] : []), ...used];
}

/** Every instance tagged with `owner` in `regions` that is not terminated or terminating. */
export async function ownedInstances(instancesIn: InstancesIn, regions: Iterable<string | undefined>, owner: string): Promise<OwnedThing[]> {
  const things: OwnedThing[] = [];
  for (const region of new Set([...regions].map((r) => r || undefined))) {
    const found = await (await instancesIn(region)).findByTags({ [OWNER_LABEL]: owner });
    for (const instance of found) {
      const labelled = labelledOwner(instance.tags);
      // The same region under two names (the SDK chain's and its own) lists it twice.
      if (gone(instance) || labelled?.owner !== owner || things.some((t) => t.id === instance.id)) continue;
      things.push({
        kind: INSTANCE_KIND,
        id: instance.id,
        owner,
        ...(labelled.serviceId === undefined ? {} : { serviceId: labelled.serviceId }),
        data: region === undefined ? {} : { region },
      });
    }
  }
  return things.sort((a, b) => a.id.localeCompare(b.id));
}

/** Terminates the instance if it still carries the owner's tag; one gone or terminating is fine. */
export async function removeOwnedInstance(instancesIn: InstancesIn, thing: OwnedThing): Promise<void> {
  const region = (thing.data as { region?: unknown } | undefined)?.region;
  const instances = await instancesIn(typeof region === "string" ? region : undefined);
  const instance = await instances.describe(thing.id);
  if (!instance || gone(instance) || labelledOwner(instance.tags)?.owner !== thing.owner) return;
  await instances.terminate(instance.id);
}

function gone(instance: InstanceView): boolean {
  return instance.state === "terminated" || instance.state === "shutting-down";
}
