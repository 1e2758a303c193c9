// Reaping (ServiceFactory.owned / removeOwned) for the docker target: the containers on
// the daemon that carry an owner's label, running or not.
import { existsSync } from "node:fs";
import { encodeLabel, labelledOwner, OWNER_LABEL, type OwnedThing } from "@vmctl/core/contract";
import type { DockerEngine } from "./engine.js";
import { CONTAINER_KIND } from "./naming.js";

/** Every container labelled with `owner`, with the service its labels name. A socket that does not exist holds nothing. */
export async function ownedContainers(engine: DockerEngine, owner: string): Promise<OwnedThing[]> {
  if (!existsSync(engine.socket)) return [];
  const things: OwnedThing[] = [];
  for (const id of await engine.containersLabelled([encodeLabel(OWNER_LABEL, owner)])) {
    const info = await engine.inspect(id);
    const labelled = info && labelledOwner(info.labels);
    if (!info || labelled?.owner !== owner) continue;
    things.push({
      kind: CONTAINER_KIND,
      id: info.id,
      owner,
      ...(labelled.serviceId === undefined ? {} : { serviceId: labelled.serviceId }),
      data: { name: info.name },
    });
  }
  return things;
}

/** Force-removes the container if it still carries the owner's label; one already gone is fine. */
export async function removeOwnedContainer(engine: DockerEngine, thing: OwnedThing): Promise<void> {
  const info = await engine.inspect(thing.id);
  if (!info || labelledOwner(info.labels)?.owner !== thing.owner) return;
  await engine.remove(info.id);
}
