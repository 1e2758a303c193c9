// The shapes networking is built from, shared by the orchestrator (which owns networks,
// address leases and host rules) and the targets (which own a service's own device: a
// microVM's TAP, a container's veth). IPv4 only for now.

/** Where a service's traffic may go besides its own network and published-port replies. */
export type EgressPolicy =
  | { readonly mode: "allow-all" }
  | { readonly mode: "deny-all" }
  /** Only these destinations (IPv4 CIDRs, "10.0.0.0/8" or a bare address). */
  | { readonly mode: "allow"; readonly cidrs: readonly string[] };

/** A named network: one bridge, one subnet, NAT to the host's uplink. */
export interface NetworkDefinition {
  /** "default", or a user's name ([a-z0-9][a-z0-9_.-]{0,62}). */
  readonly name: string;
  /** The subnet in canonical form: its network address and prefix ("10.88.1.0/24"). */
  readonly subnet: string;
  /** The bridge's address and the guests' default route: the subnet's first host. */
  readonly gateway: string;
  /** The bridge's Linux interface name (at most 15 bytes), derived from the network. */
  readonly bridge: string;
  /** Resolvers handed to guests ("nameserver" lines), in order. */
  readonly dns: readonly string[];
  /** The policy of services that do not set their own. */
  readonly policy: EgressPolicy;
}

/** `vmctl run -p [HOST_ADDRESS:]HOST_PORT:GUEST_PORT[/udp]`. */
export interface PublishedPort {
  /** 1..65535, answered on the host. */
  readonly hostPort: number;
  /** 1..65535, inside the service. */
  readonly guestPort: number;
  readonly protocol: "tcp" | "udp";
  /** A host address to answer on only; absent: every host address. */
  readonly hostAddress?: string;
}

/**
 * What a service is given on its network. The engine leases the address (durably, before
 * anything is made on the host) and hands this to the target in TargetContext.network; the
 * target makes its host-side device under `hostDevice`, attached to `bridge`, and hands
 * address, gateway and DNS to the guest.
 */
export interface NetworkAttachment {
  readonly network: string;
  readonly bridge: string;
  /** The guest's address. */
  readonly address: string;
  readonly prefixLength: number;
  readonly gateway: string;
  readonly dns: readonly string[];
  /** The guest's MAC: locally administered unicast, derived from the service id. */
  readonly mac: string;
  /** The host-side device's name (TAP or veth), at most 15 bytes, derived from the service id. */
  readonly hostDevice: string;
  readonly mtu: number;
}

/** One service's host rules, applied once its device exists, removed before it goes. */
export interface ServiceRules {
  readonly serviceId: string;
  readonly attachment: NetworkAttachment;
  readonly ports: readonly PublishedPort[];
  /** The service's own policy, else its network's. */
  readonly policy: EgressPolicy;
}

/** What is on the host under our name, for reconciling after a crash. */
export interface HostNetworkInventory {
  /** Bridges we made (by interface name). */
  readonly bridges: readonly string[];
  /** Service ids that have rules. */
  readonly services: readonly string[];
  /** TAP devices we made (by interface name). */
  readonly devices: readonly string[];
}

/**
 * The host side, done in-process through netlink and libnftables (@vmctl/native): no
 * child process. Every call is idempotent; "absent" is never an error on removal.
 * Implemented by ts/core/src/network/host-network.ts.
 */
export interface HostNetworkOps {
  /** The bridge, its gateway address, link up, forwarding, NAT to the uplink, the metadata refusal. */
  ensureNetwork(network: NetworkDefinition): Promise<void>;
  /** The network's rules and bridge. */
  removeNetwork(network: NetworkDefinition): Promise<void>;
  /** DNAT for the published ports and the egress policy, replacing what the service had. */
  applyService(rules: ServiceRules): Promise<void>;
  removeService(serviceId: string): Promise<void>;
  /** A persistent TAP named `attachment.hostDevice`, attached to its bridge and up (for microVMs). */
  createTap(attachment: NetworkAttachment): Promise<void>;
  /** A link we made (TAP, veth); false when it was not there. */
  deleteDevice(name: string): Promise<boolean>;
  inventory(): Promise<HostNetworkInventory>;
  /** The IPv4 subnets the host already uses (its addresses' and routes', ours excluded): a new network must not overlap them. */
  hostSubnets(): Promise<readonly string[]>;
}
