// Which address a guest gets and which subnet a network gets: pure arithmetic over what
// is taken. The state store calls these inside the transaction that records the choice,
// so two creates can never be handed the same address.
import { cidrOverlaps, cidrSize, formatAddress, formatCidr, parseAddress, type Cidr } from "./ipv4.js";

/** A subnet's fixed addresses: the gateway (the bridge) is its first host; the network and broadcast addresses are never a host's. */
export interface SubnetPlan {
  readonly subnet: string;
  readonly prefixLength: number;
  readonly gateway: string;
  /** Addresses guests may get, as numbers: [first, last]. */
  readonly firstGuest: number;
  readonly lastGuest: number;
}

export function planSubnet(cidr: Cidr): SubnetPlan {
  const size = cidrSize(cidr);
  return {
    subnet: formatCidr(cidr),
    prefixLength: cidr.prefix,
    gateway: formatAddress(cidr.base + 1),
    firstGuest: cidr.base + 2,
    lastGuest: cidr.base + size - 2,
  };
}

/** The lowest guest address of `plan` not in `taken`; undefined when the subnet is full. */
export function pickAddress(plan: SubnetPlan, taken: ReadonlySet<string>): string | undefined {
  for (let n = plan.firstGuest; n <= plan.lastGuest; n++) {
    const address = formatAddress(n);
    if (!taken.has(address)) return address;
  }
  return undefined;
}

/** True when `address` is one a guest of `plan` may have (not the gateway, network or broadcast address). */
export function isGuestAddress(plan: SubnetPlan, address: string): boolean {
  const n = parseAddress(address, "address");
  return n >= plan.firstGuest && n <= plan.lastGuest;
}

/** The first `/prefix` block of `pool` that overlaps none of `used`; undefined when the pool is spent. */
export function pickSubnet(pool: Cidr, prefix: number, used: readonly Cidr[]): Cidr | undefined {
  if (prefix < pool.prefix) return undefined;
  const step = 2 ** (32 - prefix);
  for (let base = pool.base; base < pool.base + cidrSize(pool); base += step) {
    const candidate = { base, prefix };
    if (!used.some((u) => cidrOverlaps(u, candidate))) return candidate;
  }
  return undefined;
}
