// Names the docker target gives what it makes — container names, labels, ledger entries,
// files in the serviceDir — in one place, so create() and adopt() always agree.
import { createHash } from "node:crypto";
import { join } from "node:path";
import { OWNER_LABEL, SERVICE_LABEL, TARGET_LABEL, serviceLabels, type OwnedResource } from "@vmctl/core/contract";

/**
 * Label keys, defined once in the contract: the engine puts the owner's (and the
 * service's) in ctx.ownerLabels; TARGET_LABEL marks what this target made, for
 * `docker ps --filter label=vmctl.io/target=docker`.
 */
export { OWNER_LABEL, SERVICE_LABEL, TARGET_LABEL };

/** Docker's rule for container names. */
const CONTAINER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

/**
 * The container name of a service: "vmctl-<service id>-<8 hex of the owner>". The owner
 * part keeps two installations (or two test runs) sharing one daemon from colliding on
 * the same service id; a service id Docker refuses is replaced by its digest.
 */
export function containerNameFor(serviceId: string, ownerLabels: Readonly<Record<string, string>>): string {
  const owner = createHash("sha256").update(ownerLabels[OWNER_LABEL] ?? "").digest("hex").slice(0, 8);
  const plain = `vmctl-${serviceId}-${owner}`;
  if (CONTAINER_NAME.test(plain) && plain.length <= 128) return plain;
  return `vmctl-${createHash("sha256").update(serviceId).digest("hex").slice(0, 32)}-${owner}`;
}

/** The labels every container of a service carries. */
export function labelsFor(serviceId: string, ownerLabels: Readonly<Record<string, string>>): Record<string, string> {
  return { ...serviceLabels(ownerLabels, serviceId), [TARGET_LABEL]: "docker" };
}

/** A container carries a service's labels: it is that service's, not someone else's with the same name. */
export function isServiceContainer(labels: Readonly<Record<string, string>>, serviceId: string, ownerLabels: Readonly<Record<string, string>>): boolean {
  return Object.entries(labelsFor(serviceId, ownerLabels)).every(([k, v]) => labels[k] === v);
}

/** What the ledger holds for a service's container. */
export interface ContainerResourceData {
  readonly socket: string;
  readonly name: string;
  /** Set once Docker has created it. */
  readonly id?: string;
}

export const CONTAINER_KIND = "docker-container";

export function containerResource(data: ContainerResourceData): OwnedResource {
  return { kind: CONTAINER_KIND, key: data.name, data: { ...data } };
}

/** Signals stop() sent, so an exit reads "stopped" even for a controller made by adopt(). */
export function stopFileOf(serviceDir: string): string {
  return join(serviceDir, "docker-stop.json");
}
