// vmctl.v1's networking messages ↔ the orchestrator API's types: published ports, egress
// policies, a service's network and the Network RPCs. Client input is decoded leniently
// into the engine's shapes (the engine checks every field and names it); an enum value
// with no name is a ValidationError here, the only thing the engine could not tell.
import type { CreateNetworkInput, EgressPolicy, NetworkRecord, PublishedPort, ServiceNetworkInfo } from "@vmctl/core/contract";
import type { vmctl } from "../gen/protos.js";
import { policyMode } from "./enums.js";
import { dateOf } from "./wire-numbers.js";

export function portToProto(p: PublishedPort): vmctl.v1.IPublishedPort {
  return { hostPort: p.hostPort, guestPort: p.guestPort, protocol: p.protocol, hostAddress: p.hostAddress ?? "" };
}

/** As sent: the engine checks the numbers and the protocol ("" is tcp). */
export function portFromProto(p: vmctl.v1.IPublishedPort): PublishedPort {
  return {
    hostPort: p.hostPort ?? 0,
    guestPort: p.guestPort ?? 0,
    protocol: (p.protocol || "tcp") as PublishedPort["protocol"],
    ...(p.hostAddress ? { hostAddress: p.hostAddress } : {}),
  };
}

export function policyToProto(p: EgressPolicy): vmctl.v1.IEgressPolicy {
  return { mode: policyMode.encode(p.mode), cidrs: p.mode === "allow" ? [...p.cidrs] : [] };
}

/** Client input: a mode with no name is a ValidationError on `${field}.mode`; the CIDRs are the engine's to check. */
export function policyFromProto(p: vmctl.v1.IEgressPolicy, field: string): EgressPolicy {
  const mode = policyMode.parse(p.mode, `${field}.mode`);
  return mode === "allow" ? { mode, cidrs: [...(p.cidrs ?? [])] } : { mode, ...(p.cidrs && p.cidrs.length > 0 ? { cidrs: [...p.cidrs] } : {}) };
}

/** A server's answer: an unknown mode reads as deny-all, the safe reading. */
function policyOf(p: vmctl.v1.IEgressPolicy | null | undefined): EgressPolicy {
  const mode = policyMode.decode(p?.mode, "deny-all");
  return mode === "allow" ? { mode, cidrs: [...(p?.cidrs ?? [])] } : { mode };
}

export function serviceNetworkToProto(n: ServiceNetworkInfo): vmctl.v1.IServiceNetwork {
  return {
    network: n.network,
    address: n.address,
    prefixLength: n.prefixLength,
    gateway: n.gateway,
    dns: [...n.dns],
    mac: n.mac,
    hostDevice: n.hostDevice,
    ports: n.ports.map(portToProto),
    policy: policyToProto(n.policy),
    ownPolicy: n.ownPolicy,
  };
}

export function serviceNetworkFromProto(n: vmctl.v1.IServiceNetwork): ServiceNetworkInfo {
  return {
    network: n.network ?? "",
    address: n.address ?? "",
    prefixLength: n.prefixLength ?? 0,
    gateway: n.gateway ?? "",
    dns: [...(n.dns ?? [])],
    mac: n.mac ?? "",
    hostDevice: n.hostDevice ?? "",
    ports: (n.ports ?? []).map(portFromProto),
    policy: policyOf(n.policy),
    ownPolicy: n.ownPolicy === true,
  };
}

export function networkToProto(n: NetworkRecord): vmctl.v1.INetwork {
  return {
    name: n.name,
    subnet: n.subnet,
    prefixLength: n.prefixLength,
    gateway: n.gateway,
    bridge: n.bridge,
    dns: [...n.dns],
    policy: policyToProto(n.policy),
    services: [...n.services],
    createdUnixMs: n.createdAt.getTime(),
  };
}

export function networkFromProto(n: vmctl.v1.INetwork): NetworkRecord {
  return {
    name: n.name ?? "",
    subnet: n.subnet ?? "",
    prefixLength: n.prefixLength ?? 0,
    gateway: n.gateway ?? "",
    bridge: n.bridge ?? "",
    dns: [...(n.dns ?? [])],
    policy: policyOf(n.policy),
    services: [...(n.services ?? [])],
    createdAt: dateOf(n.createdUnixMs),
  };
}

export function createNetworkToProto(input: CreateNetworkInput): vmctl.v1.ICreateNetworkRequest {
  return {
    name: input.name,
    subnet: input.subnet ?? "",
    dns: [...(input.dns ?? [])],
    ...(input.policy === undefined ? {} : { policy: policyToProto(input.policy) }),
  };
}

export function createNetworkFromProto(req: vmctl.v1.ICreateNetworkRequest): CreateNetworkInput {
  return {
    name: req.name ?? "",
    ...(req.subnet ? { subnet: req.subnet } : {}),
    dns: [...(req.dns ?? [])],
    ...(req.policy ? { policy: policyFromProto(req.policy, "policy") } : {}),
  };
}
