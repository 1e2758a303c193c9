// A service's lease and its network, as what the API reports and what its target and the
// host rules are handed: one mapping from the stored rows for all three.
import type { ServiceNetworkInfo } from "../orchestrator/api.js";
import type { StoredLease } from "../state/network-store.js";
import { DEFAULT_MTU } from "./network-input.js";
import type { NetworkAttachment, NetworkDefinition, ServiceRules } from "./types.js";

/** The prefix length of a canonical "a.b.c.d/n". */
export function prefixOf(subnet: string): number {
  return Number(subnet.slice(subnet.indexOf("/") + 1));
}

export function networkInfo(lease: StoredLease, network: NetworkDefinition): ServiceNetworkInfo {
  return {
    network: lease.network,
    address: lease.address,
    prefixLength: prefixOf(network.subnet),
    gateway: network.gateway,
    dns: network.dns,
    mac: lease.mac,
    hostDevice: lease.hostDevice,
    ports: lease.ports,
    policy: lease.policy ?? network.policy,
    ownPolicy: lease.policy !== undefined,
  };
}

export function attachmentOf(lease: StoredLease, network: NetworkDefinition): NetworkAttachment {
  return {
    network: network.name,
    bridge: network.bridge,
    address: lease.address,
    prefixLength: prefixOf(network.subnet),
    gateway: network.gateway,
    dns: network.dns,
    mac: lease.mac,
    hostDevice: lease.hostDevice,
    mtu: DEFAULT_MTU,
  };
}

export function rulesOf(lease: StoredLease, network: NetworkDefinition): ServiceRules {
  return { serviceId: lease.serviceId, attachment: attachmentOf(lease, network), ports: lease.ports, policy: lease.policy ?? network.policy };
}
