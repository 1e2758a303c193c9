// Names derived from a service: its client token, its tags, its ledger entries, its
// files in serviceDir. One place, so create(), start() and adopt() always agree.
import { createHash } from "node:crypto";
import { join } from "node:path";
import { OWNER_LABEL, SERVICE_LABEL, serviceLabels, type OwnedResource } from "@vmctl/core/contract";

/**
 * The service's tag: the contract's SERVICE_LABEL, set through serviceLabels() like
 * every target's labels. This name only stays for what re-exports it (instances.ts).
 * @deprecated use SERVICE_LABEL from @vmctl/core/contract.
 */
export const SERVICE_TAG = SERVICE_LABEL;
/** Set before vmctl stops the instance, so the exit reads "stopped" in any later process. */
export const STOP_TAG = "vmctl.io/stop-requested";

/** Where a service's output and exit status live in S3. */
export interface ReportLocation {
  readonly bucket: string;
  /** "vmctl/<serviceId>/" */
  readonly prefix: string;
}

export function reportLocation(bucket: string, serviceId: string): ReportLocation {
  return { bucket, prefix: `vmctl/${serviceId}/` };
}

/** The owner label key the orchestrator sets (`vmctl.io/owner` = this installation). */
export { OWNER_LABEL };

/**
 * RunInstances' idempotency token: the same for every retry of one service's start
 * (across restarts too), different for another installation's service of the same id.
 */
export function clientTokenFor(ownerLabels: Readonly<Record<string, string>>, serviceId: string): string {
  const owner = ownerLabels[OWNER_LABEL] ?? "";
  return `vmctl-${createHash("sha256").update(`${owner}\0${serviceId}`).digest("hex").slice(0, 40)}`;
}

/** Tags that mark the instance (and its volumes) as this service's. */
export function instanceTags(ownerLabels: Readonly<Record<string, string>>, serviceId: string): Record<string, string> {
  return { ...serviceLabels(ownerLabels, serviceId), Name: `vmctl-${serviceId}` };
}

/** The tags adopt and start look instances up by (Name is cosmetic and left out). */
export function lookupTags(ownerLabels: Readonly<Record<string, string>>, serviceId: string): Record<string, string> {
  const tags: Record<string, string> = { [SERVICE_LABEL]: serviceId };
  if (ownerLabels[OWNER_LABEL] !== undefined) tags[OWNER_LABEL] = ownerLabels[OWNER_LABEL];
  return tags;
}

export const INSTANCE_KIND = "ec2-instance";
export const REPORTS_KIND = "s3-prefix";

export interface InstanceResourceData {
  readonly clientToken: string;
  readonly region?: string;
  readonly instanceId?: string;
}

/** Ledger entries, one builder per kind. */
export const ledger = {
  /** Intended before RunInstances (keyed by the client token), updated with the instance id. */
  instance(data: InstanceResourceData): OwnedResource {
    return { kind: INSTANCE_KIND, key: data.clientToken, data: { ...data } };
  },
  /** The guest's output objects: intended before the guest gets its upload URLs. */
  reports(url: string): OwnedResource {
    return { kind: REPORTS_KIND, key: url };
  },
};

/** Written by stop() on a service never started: start() then does nothing. */
export function stoppedBeforeStartFile(serviceDir: string): string {
  return join(serviceDir, "stopped-before-start");
}
