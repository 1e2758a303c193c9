// The names networking derives from ids: a network's bridge, a service's host device and
// its guest's MAC. Derived, never stored alone: the same id gives the same name after a
// restart, so reconciling can tell ours from anyone else's by name and recompute which
// service or network a device belongs to.
import { createHash } from "node:crypto";
import { MAX_DEVICE_NAME_BYTES } from "./network-input.js";

/** Bridges we make: "vmbr-" + 10 hex digits of the network's name. */
export const BRIDGE_PREFIX = "vmbr-";
/** Host-side devices (TAP, veth) we make: "vmtap-" + 9 hex digits of the service id. */
export const DEVICE_PREFIX = "vmtap-";

function digest(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** The bridge of a network: stable across restarts, 15 bytes. */
export function bridgeName(network: string): string {
  return `${BRIDGE_PREFIX}${digest(`network:${network}`).slice(0, MAX_DEVICE_NAME_BYTES - BRIDGE_PREFIX.length)}`;
}

/** The host-side device of a service: stable across restarts, 15 bytes. */
export function hostDeviceName(serviceId: string): string {
  return `${DEVICE_PREFIX}${digest(`service:${serviceId}`).slice(0, MAX_DEVICE_NAME_BYTES - DEVICE_PREFIX.length)}`;
}

/**
 * The guest's MAC: 02:xx:xx:xx:xx:xx — locally administered (bit 1 of the first octet) and
 * unicast (bit 0 clear), so it can clash with no vendor's; the rest from the service id.
 */
export function macFor(serviceId: string): string {
  const bytes = digest(`mac:${serviceId}`).slice(0, 10).match(/../g) as string[];
  return ["02", ...bytes].join(":");
}
