// IPv4 addresses and subnets: parsing (strict, canonical), overlap, the n-th host. The one
// owner of IPv4 parsing in core; everything that reads an address or a CIDR asks here.
// Addresses are unsigned 32-bit numbers held in plain JS numbers (never negative, never
// bitwise-or'ed into int32).
import { echo } from "../contract/limits.js";
import { ValidationError } from "../errors.js";

export interface Cidr {
  /** The network address as an unsigned 32-bit number. */
  readonly base: number;
  readonly prefix: number;
}

const OCTET = /^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$/;
const PREFIX = /^(3[0-2]|[12]?[0-9])$/;

/** "10.1.2.3" as a number; no leading zeros (octal to some parsers), no spaces, 4 octets. */
export function parseAddress(value: unknown, field: string): number {
  if (typeof value !== "string") throw new ValidationError(field, "must be an IPv4 address (\"10.1.2.3\")");
  const parts = value.split(".");
  if (parts.length !== 4 || !parts.every((p) => OCTET.test(p))) throw new ValidationError(field, `${echo(value)} is not an IPv4 address`);
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

export function formatAddress(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join(".");
}

/** True when `value` is an IPv4 address in canonical dotted form. */
export function isAddress(value: unknown): value is string {
  return typeof value === "string" && value.split(".").length === 4 && value.split(".").every((p) => OCTET.test(p));
}

/**
 * "10.0.0.0/8", or a bare address as a /32. Host bits set are refused ("10.0.0.1/8" is
 * not a subnet) unless `loose`, which gives the subnet the address is in.
 */
export function parseCidr(value: unknown, field: string, options: { loose?: boolean } = {}): Cidr {
  if (typeof value !== "string") throw new ValidationError(field, "must be an IPv4 CIDR (\"10.0.0.0/8\")");
  const slash = value.indexOf("/");
  const address = parseAddress(slash < 0 ? value : value.slice(0, slash), field);
  const prefixText = slash < 0 ? "32" : value.slice(slash + 1);
  if (!PREFIX.test(prefixText)) throw new ValidationError(field, `${echo(value)} has no valid prefix length (0-32)`);
  const prefix = Number(prefixText);
  const base = networkOf(address, prefix);
  if (base !== address && !options.loose) {
    throw new ValidationError(field, `${echo(value)} has host bits set (the network is ${formatAddress(base)}/${prefix})`);
  }
  return { base, prefix };
}

/** The canonical text of a CIDR ("10.88.1.0/24"). */
export function formatCidr(c: Cidr): string {
  return `${formatAddress(c.base)}/${c.prefix}`;
}

/** `value` in canonical form: "10.0.0.0/8" stays, a bare "1.2.3.4" becomes "1.2.3.4/32". */
export function canonicalCidr(value: unknown, field: string): string {
  return formatCidr(parseCidr(value, field));
}

/** The network address of `address` under `prefix`. */
export function networkOf(address: number, prefix: number): number {
  const size = 2 ** (32 - prefix);
  return address - (address % size);
}

/** How many addresses the CIDR spans (2^(32-prefix)). */
export function cidrSize(c: Cidr): number {
  return 2 ** (32 - c.prefix);
}

export function cidrOverlaps(a: Cidr, b: Cidr): boolean {
  return a.base < b.base + cidrSize(b) && b.base < a.base + cidrSize(a);
}

/** True when `address` lies in `c`. */
export function cidrContains(c: Cidr, address: number): boolean {
  return address >= c.base && address < c.base + cidrSize(c);
}

/**
 * The n-th host of a subnet, from 1: the first is the network address + 1 (the
 * gateway, by our convention). The network and broadcast addresses are no hosts, except
 * in a /31 (RFC 3021: both are) and a /32 (its one address). RangeError beyond the last.
 */
export function nthHost(c: Cidr, n: number): number {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`host index ${n} must be a whole number from 1`);
  const size = cidrSize(c);
  const hosts = size <= 2 ? size : size - 2;
  if (n > hosts) throw new RangeError(`${formatCidr(c)} has ${hosts} host address${hosts === 1 ? "" : "es"}, not ${n}`);
  return size <= 2 ? c.base + n - 1 : c.base + n;
}
