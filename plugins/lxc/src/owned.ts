// Reaping (ServiceFactory.owned / removeOwned) for the lxc target: the containers under
// its private lxcpath whose config carries an owner's label (config.ts writes labels as
// comments), and what one made before networking moved to the orchestrator held
// (legacy-bridge.ts). A network's veth and lease are the engine's to remove.
import { readdirSync, readFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { labelledOwner, type OwnedThing } from "@vmctl/core/contract";
import { configLabels, configRootfs } from "./config.js";
import { containerDir } from "./layout.js";
import { releaseLegacy } from "./legacy-bridge.js";
import type { LxcTools } from "./tools.js";

const KIND = "lxc-container";

/** Every container under the lxcpath labelled with `owner`, running or not. */
export async function ownedContainers(tools: LxcTools, owner: string): Promise<OwnedThing[]> {
  let names: string[];
  try {
    names = readdirSync(tools.lxcpath);
  } catch {
    return [];
  }
  const things: OwnedThing[] = [];
  for (const name of names.sort()) {
    const labelled = labelledOwner(configLabels(readConfig(tools, name) ?? ""));
    if (labelled?.owner !== owner) continue;
    things.push({ kind: KIND, id: name, owner, ...(labelled.serviceId === undefined ? {} : { serviceId: labelled.serviceId }) });
  }
  return things;
}

/**
 * Kills the container if it runs, removes its directory (with lxc-destroy first when a
 * template made its rootfs inside it: a user's rootfs elsewhere is never touched) and
 * gives back an old bridge address (and veth) its service held. One already gone is fine.
 */
export async function removeOwnedContainer(tools: LxcTools, legacyAddresses: string, thing: OwnedThing): Promise<void> {
  const name = thing.id;
  if (name === "" || name === "." || name === ".." || name.includes("/")) return;
  const config = readConfig(tools, name);
  if (config === undefined || labelledOwner(configLabels(config))?.owner !== thing.owner) return;
  const dir = containerDir(tools.lxcpath, name);
  await tools.kill(name);
  if (configRootfs(config)?.startsWith(`${dir}/`) && tools.bin.destroy !== undefined) await tools.destroy(name).catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
  if (thing.serviceId !== undefined) await releaseLegacy(legacyAddresses, thing.serviceId);
}

function readConfig(tools: LxcTools, name: string): string | undefined {
  try {
    return readFileSync(`${containerDir(tools.lxcpath, name)}/config`, "utf8");
  } catch {
    return undefined;
  }
}
