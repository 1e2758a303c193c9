// Names a target gives what it makes for a service, from the service id: readable when
// the id fits the medium's rules, a digest of it when not (so any id works, and the
// same id always gives the same name: create and adopt agree).
import { createHash } from "node:crypto";

/** "vmctl-" + the service id when `fits` accepts that, else "vmctl-" + 32 hex of its SHA-256. */
export function instanceNameFor(serviceId: string, fits: (name: string) => boolean): string {
  const plain = `vmctl-${serviceId}`;
  return fits(plain) ? plain : `vmctl-${createHash("sha256").update(serviceId).digest("hex").slice(0, 32)}`;
}

/** A hostname for the workload's UTS namespace: the service id when it is a valid one, else "vmctl". */
export function hostnameFor(serviceId: string): string {
  return /^[A-Za-z0-9]([A-Za-z0-9.-]{0,62})$/.test(serviceId) ? serviceId : "vmctl";
}
