// A service's network as LXC sees it: the orchestrator leases the address, makes the
// bridge and applies the rules (ts/core/src/network); the container gets one veth whose
// host side LXC makes under the engine's device name (so the engine's cleanup and crash
// reconciliation find it), joined to the network's bridge, and a resolv.conf of the
// network's resolvers bind-mounted over its own.
import { lstatSync } from "node:fs";
import { join } from "node:path";
import { formatAddress, isAddress, parseAddress, VmctlError, type NetworkAttachment } from "@vmctl/core/contract";
import type { LxcSpec } from "./spec.js";

/** Interface names: what the kernel takes (≤ 15 bytes), kept to a safe set. */
const IFNAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

/** Where the resolv.conf goes in the container (an lxc.mount.entry destination: relative). */
export const RESOLV_CONF = "etc/resolv.conf";

/**
 * The attachment, checked before any of it is written on a line of the LXC config: it
 * comes from the engine, but a value LXC would read as a further key must never get in.
 */
export function checkAttachment(a: NetworkAttachment): NetworkAttachment {
  const bad = (field: string, what: string): VmctlError =>
    new VmctlError("INVALID_ARGUMENT", `network.${field}: ${what}`, { details: { field: `network.${field}`, target: "lxc" } });
  if (!IFNAME.test(a.bridge)) throw bad("bridge", `${JSON.stringify(a.bridge)} is not an interface name`);
  if (!IFNAME.test(a.hostDevice)) throw bad("hostDevice", `${JSON.stringify(a.hostDevice)} is not an interface name (at most 15 bytes)`);
  if (!MAC.test(a.mac)) throw bad("mac", `${JSON.stringify(a.mac)} is not a MAC address`);
  if (!isAddress(a.address)) throw bad("address", `${JSON.stringify(a.address)} is not an IPv4 address`);
  if (!isAddress(a.gateway)) throw bad("gateway", `${JSON.stringify(a.gateway)} is not an IPv4 address`);
  if (!Number.isInteger(a.prefixLength) || a.prefixLength < 1 || a.prefixLength > 30) throw bad("prefixLength", `${a.prefixLength} is not from 1 to 30`);
  if (!Number.isInteger(a.mtu) || a.mtu < 68 || a.mtu > 65535) throw bad("mtu", `${a.mtu} is not from 68 to 65535`);
  a.dns.forEach((d, i) => {
    if (!isAddress(d)) throw bad(`dns[${i}]`, `${JSON.stringify(d)} is not an IPv4 address`);
  });
  return a;
}

/** The subnet's broadcast address: LXC 5.0.2 sets `brd 0.0.0.255` on a /24 unless told. */
export function broadcastOf(address: string, prefixLength: number): string {
  const host = 2 ** (32 - prefixLength) - 1;
  return formatAddress((parseAddress(address, "network.address") | host) >>> 0);
}

/**
 * An empty network namespace (only a loopback, down), or one veth: the host side under
 * the engine's name on the network's bridge, the container side `eth0` with the leased
 * address, the gateway as default route, the engine's MAC and the network's MTU.
 */
export function networkLines(a: NetworkAttachment | undefined): string[] {
  if (a === undefined) return ["lxc.net.0.type = empty"];
  checkAttachment(a);
  return [
    "lxc.net.0.type = veth",
    `lxc.net.0.link = ${a.bridge}`,
    "lxc.net.0.flags = up",
    "lxc.net.0.name = eth0",
    `lxc.net.0.veth.pair = ${a.hostDevice}`,
    `lxc.net.0.hwaddr = ${a.mac.toLowerCase()}`,
    `lxc.net.0.mtu = ${a.mtu}`,
    `lxc.net.0.ipv4.address = ${a.address}/${a.prefixLength} ${broadcastOf(a.address, a.prefixLength)}`,
    `lxc.net.0.ipv4.gateway = ${a.gateway}`,
  ];
}

/** The resolv.conf a service on a network gets: the network's resolvers, in order. */
export function resolvConfText(dns: readonly string[]): string {
  return `# Written by vmctl from the service's network.\n${dns.map((d) => `nameserver ${d}`).join("\n")}\n`;
}

/**
 * Whether the network's resolvers can be bind-mounted over the rootfs's /etc/resolv.conf
 * without touching the rootfs's files (which may be shared, or the user's): not when
 * there are none, when a spec mount already covers it, or when /etc or the file is a
 * symlink (it resolves inside the container, and LXC refuses to mount through one). A
 * missing file is a mount point made like the spec's own (rootfs.ts).
 */
export function canMountResolvConf(rootfs: string, spec: LxcSpec, dns: readonly string[]): boolean {
  if (dns.length === 0) return false;
  if ((spec.mounts ?? []).some((m) => m.destination === "/etc" || m.destination === "/etc/resolv.conf")) return false;
  for (const path of [join(rootfs, "etc"), join(rootfs, RESOLV_CONF)]) {
    try {
      const st = lstatSync(path);
      if (st.isSymbolicLink()) return false;
      if (path.endsWith("etc") ? !st.isDirectory() : !st.isFile()) return false;
    } catch {
      // missing: made as a mount point
    }
  }
  return true;
}
