// Reaping (ServiceFactory.owned / removeOwned) for the oci target: the containers under
// each runtime's private root (`--root`) whose annotations carry an owner's label.
import { labelledOwner, SERVICE_LABEL, VmctlError, type OwnedThing } from "@vmctl/core/contract";
import { LEGACY_SERVICE_ANNOTATION } from "./layout.js";
import type { OciRuntime } from "./runtime.js";

/** Every container of `runtimes` annotated with `owner`, with the service its annotations name. */
export async function ownedContainers(runtimes: Iterable<OciRuntime>, owner: string): Promise<OwnedThing[]> {
  const things: OwnedThing[] = [];
  for (const runtime of runtimes) {
    for (const id of await runtime.list()) {
      const state = await runtime.state(id);
      const labelled = state && labelledOwner(withLegacyService(state.annotations));
      if (labelled?.owner !== owner) continue;
      things.push({
        kind: `${runtime.name}-container`,
        id,
        owner,
        ...(labelled.serviceId === undefined ? {} : { serviceId: labelled.serviceId }),
        data: { runtime: runtime.name },
      });
    }
  }
  return things;
}

/** Deletes (killing it first) the container if it still carries the owner's annotation; one already gone is fine. */
export async function removeOwnedContainer(runtimes: ReadonlyMap<string, OciRuntime>, thing: OwnedThing): Promise<void> {
  const name = (thing.data as { runtime?: unknown } | undefined)?.runtime;
  const runtime = typeof name === "string" ? runtimes.get(name) : undefined;
  if (!runtime) throw new VmctlError("FAILED_PRECONDITION", `cannot remove ${thing.id}: runtime ${String(name)} is not installed`, { details: { target: "oci" } });
  const state = await runtime.state(thing.id);
  if (!state || labelledOwner(withLegacyService(state.annotations))?.owner !== thing.owner) return;
  // `delete --force` kills it; the `runc run` (and shim) that waited on it end with it.
  if (state.status === "paused") await runtime.resume(thing.id).catch(() => undefined);
  await runtime.delete(thing.id);
}

/** Annotations with the service under the contract's key, for containers made before it had one format. */
function withLegacyService(annotations: Readonly<Record<string, string>>): Readonly<Record<string, string>> {
  const legacy = annotations[LEGACY_SERVICE_ANNOTATION];
  return legacy === undefined || annotations[SERVICE_LABEL] !== undefined ? annotations : { ...annotations, [SERVICE_LABEL]: legacy };
}
