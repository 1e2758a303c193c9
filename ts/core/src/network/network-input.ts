// Checks of the networking fields of a request — a network's name, subnet and resolvers,
// a service's ports and egress policy, a MAC, an interface name — and the CLI's spellings
// of them (`-p`, `--network-policy`). Each failure is a ValidationError naming the field.
// Pure, and free of runtime dependencies (@vmctl/core/contract exports it): no host is
// looked at here — what overlaps the host's subnets, or is bound there, is the engine's.
import { echo, NAME_PATTERN } from "../contract/limits.js";
import { ValidationError } from "../errors.js";
import { cidrOverlaps, formatAddress, formatCidr, parseAddress, parseCidr, type Cidr } from "./ipv4.js";
import type { EgressPolicy, PublishedPort } from "./types.js";

export const NETWORK_LIMITS = {
  /** Published ports of one service. */
  portCount: 64,
  /** CIDRs of an "allow" policy. */
  policyCidrCount: 64,
  /** Resolvers of a network. */
  dnsCount: 8,
  /** A subnet's longest prefix: room for the network and broadcast addresses, a gateway and one guest. */
  subnetMaxPrefix: 29,
  /** A subnet's shortest prefix: an allocator scans at most this many addresses. */
  subnetMinPrefix: 16,
} as const;

/** Linux's longest interface name (IFNAMSIZ - 1), in bytes. */
export const MAX_DEVICE_NAME_BYTES = 15;
/** The guests' MTU: what a bridge over an ordinary Ethernet uplink carries unfragmented. */
export const DEFAULT_MTU = 1500;

/** The implicit network, made on first use. */
export const DEFAULT_NETWORK = "default";
/** No network: the service gets none (the default when a request names none). */
export const NO_NETWORK = "none";

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function checkPort(value: unknown, field: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > 65535) {
    throw new ValidationError(field, `${echo(value)} must be a port number 1-65535`);
  }
  return value;
}

/** A unicast host address: not 0.0.0.0/8, multicast, broadcast or reserved. */
function checkUnicast(n: number, value: string, field: string): void {
  if (n < 2 ** 24 || n >= 224 * 2 ** 24) throw new ValidationError(field, `${echo(value)} is not a unicast address`);
}

/** `ports` of a create: each port checked, no (protocol, host port, host address) twice. */
export function checkPorts(value: unknown, field = "ports"): PublishedPort[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new ValidationError(field, "must be a list of published ports");
  if (value.length > NETWORK_LIMITS.portCount) throw new ValidationError(field, `has ${value.length} entries; at most ${NETWORK_LIMITS.portCount}`);
  const out: PublishedPort[] = [];
  value.forEach((port: unknown, i) => {
    const at = `${field}[${i}]`;
    const checked = checkPublishedPort(port, at);
    const clash = out.findIndex((p) => portsClash(p, checked));
    if (clash >= 0) throw new ValidationError(`${at}.hostPort`, `${checked.protocol} ${checked.hostPort} is already published by ${field}[${clash}]`);
    out.push(checked);
  });
  return out;
}

/** One published port; a host address of 0.0.0.0 means every address (absent). */
export function checkPublishedPort(port: unknown, at: string): PublishedPort {
  if (!isObject(port)) throw new ValidationError(at, "must be a published port {hostPort, guestPort, protocol}");
  const hostPort = checkPort(port.hostPort, `${at}.hostPort`);
  const guestPort = checkPort(port.guestPort, `${at}.guestPort`);
  const protocol = port.protocol ?? "tcp";
  if (protocol !== "tcp" && protocol !== "udp") throw new ValidationError(`${at}.protocol`, `${echo(protocol)} must be "tcp" or "udp"`);
  let hostAddress: string | undefined;
  if (port.hostAddress !== undefined && port.hostAddress !== null && port.hostAddress !== "") {
    const n = parseAddress(port.hostAddress, `${at}.hostAddress`);
    if (n !== 0) {
      checkUnicast(n, String(port.hostAddress), `${at}.hostAddress`);
      hostAddress = formatAddress(n);
    }
  }
  return { hostPort, guestPort, protocol, ...(hostAddress === undefined ? {} : { hostAddress }) };
}

/** Two published ports that would answer the same packets: same protocol and port, and one's address covers the other's. */
export function portsClash(a: Pick<PublishedPort, "hostPort" | "protocol" | "hostAddress">, b: Pick<PublishedPort, "hostPort" | "protocol" | "hostAddress">): boolean {
  return a.protocol === b.protocol && a.hostPort === b.hostPort && (a.hostAddress === undefined || b.hostAddress === undefined || a.hostAddress === b.hostAddress);
}

/** An egress policy of a request; CIDRs in canonical form ("10.1.2.3" → "10.1.2.3/32"). */
export function checkPolicy(value: unknown, field = "networkPolicy"): EgressPolicy {
  if (!isObject(value)) throw new ValidationError(field, 'must be {mode: "allow-all" | "deny-all" | "allow", cidrs}');
  const { mode } = value;
  if (mode === "allow-all" || mode === "deny-all") {
    if (value.cidrs !== undefined && !(Array.isArray(value.cidrs) && value.cidrs.length === 0)) {
      throw new ValidationError(`${field}.cidrs`, `is only for mode "allow" (mode is ${mode})`);
    }
    return { mode };
  }
  if (mode !== "allow") throw new ValidationError(`${field}.mode`, `${echo(mode)} must be "allow-all", "deny-all" or "allow"`);
  const { cidrs } = value;
  if (!Array.isArray(cidrs) || cidrs.length === 0) throw new ValidationError(`${field}.cidrs`, 'is required with mode "allow": the destinations allowed');
  if (cidrs.length > NETWORK_LIMITS.policyCidrCount) throw new ValidationError(`${field}.cidrs`, `has ${cidrs.length} entries; at most ${NETWORK_LIMITS.policyCidrCount}`);
  const out = cidrs.map((c: unknown, i) => formatCidr(parseCidr(c, `${field}.cidrs[${i}]`)));
  return { mode: "allow", cidrs: [...new Set(out)] };
}

/**
 * A network's subnet: canonical, host bits clear, a prefix from /16 to /29, not in
 * 0.0.0.0/8, loopback, link-local, multicast or reserved space.
 */
export function checkSubnet(value: unknown, field = "subnet"): Cidr {
  const cidr = parseCidr(value, field);
  const { subnetMinPrefix: min, subnetMaxPrefix: max } = NETWORK_LIMITS;
  if (cidr.prefix < min || cidr.prefix > max) throw new ValidationError(field, `${echo(value)} must have a prefix length from /${min} to /${max}`);
  for (const [reserved, what] of RESERVED) {
    if (cidrOverlaps(cidr, reserved)) throw new ValidationError(field, `${echo(value)} overlaps ${formatCidr(reserved)} (${what})`);
  }
  return cidr;
}

const RESERVED: readonly [Cidr, string][] = [
  [parseCidr("0.0.0.0/8", "reserved"), "\"this network\""],
  [parseCidr("127.0.0.0/8", "reserved"), "loopback"],
  [parseCidr("169.254.0.0/16", "reserved"), "link-local, where cloud metadata lives"],
  [parseCidr("224.0.0.0/3", "reserved"), "multicast and reserved"],
];

/** A network's resolvers: unicast IPv4 addresses, at most NETWORK_LIMITS.dnsCount, no repeats. */
export function checkDns(value: unknown, field = "dns"): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new ValidationError(field, "must be a list of IPv4 addresses");
  if (value.length > NETWORK_LIMITS.dnsCount) throw new ValidationError(field, `has ${value.length} entries; at most ${NETWORK_LIMITS.dnsCount}`);
  const out = value.map((v: unknown, i) => {
    const n = parseAddress(v, `${field}[${i}]`);
    checkUnicast(n, String(v), `${field}[${i}]`);
    return formatAddress(n);
  });
  return [...new Set(out)];
}

/** A MAC a target was handed or a user gave: six hex octets, unicast, not all zero. */
export function checkMac(value: unknown, field: string): string {
  if (typeof value !== "string" || !/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(value)) {
    throw new ValidationError(field, `${echo(value)} is not a MAC address (six hex octets, "02:00:00:00:00:01")`);
  }
  const first = Number.parseInt(value.slice(0, 2), 16);
  if ((first & 1) === 1) throw new ValidationError(field, `${echo(value)} is a multicast address; a device needs a unicast one (first octet even)`);
  if (/^0{2}(:0{2}){5}$/.test(value)) throw new ValidationError(field, "00:00:00:00:00:00 is not a usable address");
  return value.toLowerCase();
}

/** A Linux interface name: 1-15 bytes, no "/", whitespace, ":" or control characters, not "." or "..". */
export function checkDeviceName(value: unknown, field: string): string {
  if (typeof value !== "string" || value === "") throw new ValidationError(field, "is required: an interface name");
  const bytes = Buffer.byteLength(value, "utf8");
  if (bytes > MAX_DEVICE_NAME_BYTES) throw new ValidationError(field, `${echo(value)} is ${bytes} bytes; an interface name is at most ${MAX_DEVICE_NAME_BYTES}`);
  if (/[\s/:\u0000-\u001f\u007f]/.test(value) || value === "." || value === "..") {
    throw new ValidationError(field, `${echo(value)} is not a valid interface name`);
  }
  return value;
}

/**
 * A network's name in a request: "default", "none" (only where a service's network is
 * meant: `allowNone`), or a user's name of the service-name form.
 */
export function checkNetworkName(value: unknown, field: string, options: { allowNone?: boolean } = {}): string {
  if (typeof value !== "string" || value === "") throw new ValidationError(field, "is required: a network name");
  if (value === NO_NETWORK) {
    if (options.allowNone) return value;
    throw new ValidationError(field, `"${NO_NETWORK}" is reserved: it means no network`);
  }
  if (!NAME_PATTERN.test(value)) throw new ValidationError(field, `${echo(value)} must match [a-z0-9][a-z0-9_.-]{0,62}`);
  return value;
}

// ---- the CLI's spellings

/** `-p [HOST_ADDRESS:]HOST_PORT:GUEST_PORT[/tcp|/udp]`, checked as `field`. */
export function parsePublish(text: string, field = "ports"): PublishedPort {
  const slash = text.lastIndexOf("/");
  const protocol = slash < 0 ? "tcp" : text.slice(slash + 1);
  const parts = (slash < 0 ? text : text.slice(0, slash)).split(":");
  if (parts.length < 2 || parts.length > 3) {
    throw new ValidationError(field, `${echo(text)} must be [HOST_ADDRESS:]HOST_PORT:GUEST_PORT[/tcp|/udp]`);
  }
  const [hostAddress, hostPort, guestPort] = parts.length === 3 ? parts : [undefined, ...parts];
  const number = (v: string | undefined): unknown => (v !== undefined && /^[0-9]{1,5}$/.test(v) ? Number(v) : v);
  return checkPublishedPort({ hostPort: number(hostPort), guestPort: number(guestPort), protocol, ...(hostAddress ? { hostAddress } : {}) }, field);
}

/** `--network-policy allow-all | deny-all | allow:CIDR[,CIDR...]`. */
export function parsePolicy(text: string, field = "networkPolicy"): EgressPolicy {
  if (text === "allow-all" || text === "deny-all") return { mode: text };
  if (text.startsWith("allow:")) return checkPolicy({ mode: "allow", cidrs: text.slice("allow:".length).split(",") }, field);
  throw new ValidationError(field, `${echo(text)} must be allow-all, deny-all or allow:CIDR[,CIDR...]`);
}

/** A policy as the CLI spells it. */
export function formatPolicy(policy: EgressPolicy): string {
  return policy.mode === "allow" ? `allow:${policy.cidrs.join(",")}` : policy.mode;
}
