// HostNetworkOps over the native addon: bridges and TAPs through netlink, the rules
// (host-network-rules.ts) through libnftables, sysctls through /proc/sys: all in this
// process, no child. Acts on the network namespace the process runs in.
//
// What is ours on the host: bridges and host devices the orchestrator names with
// BRIDGE_PREFIX / DEVICE_PREFIX ("vmbr-", "vmtap-"), which we also mark with an interface
// alias (ALIAS_PREFIX) when we make them, the two nftables tables named "vmctl", and, on
// a host with Docker, two rules per bridge in its DOCKER-USER chain (docker-user.ts).
// Inventory reports links that carry either mark, so a crash between making a link and
// marking it still leaves it found.
//
// Calls are serialised in the process: each reads the tables, then changes them in one
// transaction.
import dgram from "node:dgram";
import net from "node:net";
import { echo } from "../contract/limits.js";
import { isErrorCode, ValidationError, VmctlError, type ErrorCode } from "../errors.js";
import {
  addressOwner,
  document,
  dropTablesCommands,
  EMPTY_STATE,
  emptyState,
  listCommands,
  networkBridgesOf,
  networkCommands,
  publishedBy,
  readListing,
  removeNetworkCommands,
  removeServiceCommands,
  serviceCommands,
  servicesOf,
  skeleton,
  skeletonSignature,
  type RuleState,
} from "./host-network-rules.js";
import { allowBridgeCommands, listDockerUserCommands, readDockerUser, removeBridgeCommands, type DockerUserRule } from "./docker-user.js";
import { canonicalCidr, cidrContains, formatCidr, isAddress, parseAddress, parseCidr } from "./ipv4.js";
import { BRIDGE_PREFIX, DEVICE_PREFIX } from "./network-names.js";
import type { EgressPolicy, HostNetworkInventory, HostNetworkOps, NetworkAttachment, NetworkDefinition, PublishedPort, ServiceRules } from "./types.js";

/** The interface alias marking links we made ("vmctl network default", "vmctl device"). */
export const ALIAS_PREFIX = "vmctl ";

/** What we use of `@vmctl/native` (its net module). */
export interface NativeNetworkApi {
  ensureBridge(request: { name: string; address: string; alias?: string }): void;
  createTap(request: { name: string; bridge?: string; mtu?: number; alias?: string }): void;
  deleteLink(name: string): boolean;
  listLinks(): NativeLink[];
  listRoutes(): { destination: string; gateway?: string; device?: string }[];
  writeNetSysctl(key: string, value: string): void;
  nftRun(commands: string): string;
}

export interface NativeLink {
  name: string;
  index: number;
  kind?: string;
  master?: string;
  up: boolean;
  mac?: string;
  mtu: number;
  addresses: string[];
  alias?: string;
}

export interface HostNetworkOptions {
  /** The native primitives; default: `@vmctl/native`, loaded on first use. */
  readonly native?: NativeNetworkApi;
  /**
   * Refuse a published port a socket on the host already listens on (a bind probe on
   * it); default true.
   */
  readonly probePorts?: boolean;
}

const SERVICE_ID = /^[A-Za-z0-9_.]([A-Za-z0-9_.-]{0,126}[A-Za-z0-9_.])?$/;
const MAC = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;
const DEVICE = /^[^\s/:]{1,15}$/;

/**
 * Every call of every instance in this process, one after the other: each reads our
 * tables, then changes them, and two interleaved would act on a stale reading.
 */
let queue: Promise<unknown> = Promise.resolve();

/** skeletonSignature() of our tables as read right after this process last wrote the fixed chains. */
let skeletonMemo: string | undefined;

export function createHostNetwork(options: HostNetworkOptions = {}): HostNetworkOps {
  return new HostNetwork(options);
}

class HostNetwork implements HostNetworkOps {
  readonly #options: HostNetworkOptions;
  #native: Promise<NativeNetworkApi> | undefined;

  constructor(options: HostNetworkOptions) {
    this.#options = options;
    if (options.native !== undefined) this.#native = Promise.resolve(options.native);
  }

  ensureNetwork(network: NetworkDefinition): Promise<void> {
    return this.#serial(async (native) => {
      const { subnet, gateway, bridge } = checkNetwork(network);
      const alias = `${ALIAS_PREFIX}network ${network.name}`;
      const existed = call("listing links", "", () => native.listLinks()).some((l) => l.name === bridge);
      call("making the bridge", "network.bridge", () => native.ensureBridge({ name: bridge, address: `${gateway}/${subnet.prefix}`, alias }));
      let madeTables = false;
      try {
        call("turning on forwarding", "network", () => native.writeNetSysctl("ipv4/ip_forward", "1"));
        // Published ports answer on the host's 127.0.0.1 too: DNAT out of loopback needs it.
        call("allowing loopback sources on the bridge", "network.bridge", () => native.writeNetSysctl(`ipv4/conf/${bridge}/route_localnet`, "1"));
        let state = readState(native);
        if (state === EMPTY_STATE) {
          // The tables first, on their own: libnftables (1.0.6) fails an interval-map element
          // added in the transaction that makes its table ("No such file or directory").
          nft(native, "making our nftables tables", skeleton(EMPTY_STATE));
          madeTables = true;
          state = readState(native);
        }
        // The fixed chains are rewritten only when they are not as this process last left them.
        const skeletonIntact = skeletonMemo !== undefined && skeletonSignature(state) === skeletonMemo;
        nft(native, "setting the network's rules", networkCommands(network, state, { skeletonIntact }));
        if (!skeletonIntact) skeletonMemo = skeletonSignature(readState(native));
        allowThroughDocker(native, bridge);
      } catch (err) {
        // What this call made goes again (the rules' own transaction left nothing).
        if (madeTables) {
          try {
            native.nftRun(document(dropTablesCommands()));
          } catch {
            // Left for inventory and the next ensureNetwork, which reuse them.
          }
        }
        if (!existed) native.deleteLink(bridge);
        throw err;
      }
    });
  }

  removeNetwork(network: NetworkDefinition): Promise<void> {
    return this.#serial(async (native) => {
      const bridge = checkDevice(network?.bridge, "network.bridge");
      const state = readState(native);
      const commands = removeNetworkCommands(bridge, state);
      if (commands.length > 0) nft(native, "removing the network's rules", commands);
      const docker = removeBridgeCommands(bridge, dockerUserRules(native) ?? []);
      if (docker.length > 0) nft(native, "removing the network's rules from Docker's DOCKER-USER", docker);
      call("deleting the bridge", "network.bridge", () => native.deleteLink(bridge));
    });
  }

  applyService(rules: ServiceRules): Promise<void> {
    return this.#serial(async (native) => {
      const checked = checkRules(rules);
      const state = readState(native);
      if (!networkBridgesOf(state).includes(checked.attachment.bridge)) {
        throw new VmctlError("FAILED_PRECONDITION", `attachment.bridge: the network on ${checked.attachment.bridge} is not set up on this host (ensureNetwork first)`, {
          details: { field: "attachment.bridge", serviceId: checked.serviceId },
        });
      }
      const owner = addressOwner(state, checked.attachment.address);
      if (owner !== undefined && owner !== checked.serviceId) {
        throw new VmctlError("ALREADY_EXISTS", `rules.attachment.address: ${checked.attachment.address} has the rules of service ${owner}`, {
          details: { field: "rules.attachment.address", serviceId: checked.serviceId },
        });
      }
      for (const [i, port] of checked.ports.entries()) {
        const field = `ports[${i}].hostPort`;
        const others = publishedBy(state, port.protocol, port.hostPort).filter(
          (p) => p.serviceId !== checked.serviceId && (p.address === "" || port.hostAddress === undefined || p.address === port.hostAddress),
        );
        const other = others[0];
        if (other !== undefined) {
          throw new VmctlError("ALREADY_EXISTS", `${field}: ${port.protocol} port ${port.hostPort} is already published by service ${other.serviceId}`, {
            details: { field, serviceId: checked.serviceId },
          });
        }
        const ours = publishedBy(state, port.protocol, port.hostPort).some((p) => p.serviceId === checked.serviceId);
        if (!ours && this.#options.probePorts !== false) await probePort(port, field);
      }
      nft(native, "setting the service's rules", serviceCommands(checked, state));
      // Docker may have started since the network was made.
      allowThroughDocker(native, checked.attachment.bridge);
    });
  }

  removeService(serviceId: string): Promise<void> {
    return this.#serial(async (native) => {
      const id = checkServiceId(serviceId, "serviceId");
      const commands = removeServiceCommands(id, readState(native));
      if (commands.length > 0) nft(native, "removing the service's rules", commands);
    });
  }

  createTap(attachment: NetworkAttachment): Promise<void> {
    return this.#serial(async (native) => {
      const name = checkDevice(attachment?.hostDevice, "attachment.hostDevice");
      const bridge = checkDevice(attachment.bridge, "attachment.bridge");
      const mtu = attachment.mtu;
      if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65535) throw new ValidationError("attachment.mtu", `${echo(mtu)} must be 68-65535`);
      call("making the TAP device", "attachment.hostDevice", () => native.createTap({ name, bridge, mtu, alias: `${ALIAS_PREFIX}device` }));
    });
  }

  deleteDevice(name: string): Promise<boolean> {
    return this.#serial(async (native) => call("deleting the device", "name", () => native.deleteLink(checkDevice(name, "name"))));
  }

  inventory(): Promise<HostNetworkInventory> {
    return this.#serial(async (native) => {
      const links = call("listing links", "", () => native.listLinks());
      const marked = (l: NativeLink, prefix: string, what: string) => l.name.startsWith(prefix) || l.alias?.startsWith(`${ALIAS_PREFIX}${what}`) === true;
      const state = readState(native);
      const bridges = new Set(links.filter((l) => l.kind === "bridge" && marked(l, BRIDGE_PREFIX, "network")).map((l) => l.name));
      // A bridge whose link is gone but whose rules are left (a crash between the two).
      for (const b of networkBridgesOf(state)) bridges.add(b);
      for (const r of dockerUserRules(native) ?? []) bridges.add(r.bridge);
      return {
        bridges: [...bridges].sort(),
        services: servicesOf(state),
        devices: links
          .filter((l) => l.kind !== "bridge" && marked(l, DEVICE_PREFIX, "device"))
          .map((l) => l.name)
          .sort(),
      };
    });
  }

  hostSubnets(): Promise<readonly string[]> {
    return this.#serial(async (native) => {
      const links = call("listing links", "", () => native.listLinks());
      const ours = new Set(links.filter((l) => l.name.startsWith(BRIDGE_PREFIX) || l.alias?.startsWith(`${ALIAS_PREFIX}network`)).map((l) => l.name));
      const out = new Set<string>();
      for (const link of links) {
        if (ours.has(link.name)) continue;
        for (const a of link.addresses) out.add(formatCidr(parseCidr(a, "address", { loose: true })));
      }
      for (const route of call("listing routes", "", () => native.listRoutes())) {
        if (route.device !== undefined && ours.has(route.device)) continue;
        const cidr = parseCidr(route.destination, "route", { loose: true });
        // The default route covers everything; it says nothing about what is in use.
        if (cidr.prefix === 0) continue;
        out.add(formatCidr(cidr));
      }
      return [...out].sort();
    });
  }

  /** Runs `work` after every earlier call in this process has finished. */
  #serial<T>(work: (native: NativeNetworkApi) => Promise<T>): Promise<T> {
    const run = queue.then(async () => work(await this.#loadNative()));
    queue = run.catch(() => undefined);
    return run;
  }

  #loadNative(): Promise<NativeNetworkApi> {
    this.#native ??= (import("@vmctl/native") as Promise<NativeNetworkApi>).catch((err: unknown) => {
      this.#native = undefined;
      throw new VmctlError("FAILED_PRECONDITION", `host networking needs the native addon @vmctl/native, which cannot be loaded here: ${(err as Error).message}`, {
        cause: err,
      });
    });
    return this.#native;
  }
}

// --- native calls and their errors -------------------------------------------------------

/** A native primitive's error as a VmctlError: its `code`, and for INVALID_ARGUMENT our field. */
function nativeError(err: unknown, action: string, field: string): VmctlError {
  const property = (err as { code?: unknown } | null)?.code;
  const code: ErrorCode = typeof property === "string" && isErrorCode(property) ? property : VmctlError.from(err).code;
  const text = err instanceof Error ? err.message : String(err);
  const invalid = code === "INVALID_ARGUMENT" && field !== "";
  return new VmctlError(code, `${invalid ? `${field}: ` : ""}${action}: ${text}`, { cause: err, details: invalid ? { field } : {} });
}

function call<T>(action: string, field: string, work: () => T): T {
  try {
    return work();
  } catch (err) {
    throw nativeError(err, action, field);
  }
}

function nft(native: NativeNetworkApi, action: string, commands: Parameters<typeof document>[0]): string {
  return call(action, "", () => native.nftRun(document(commands)));
}

/** Our two tables as they are now; empty when they do not exist yet. */
function readState(native: NativeNetworkApi): RuleState {
  const into = emptyState();
  const list = (commands: Parameters<typeof document>[0]): boolean => {
    try {
      readListing(native.nftRun(document(commands)), into);
      return true;
    } catch (err) {
      if ((err as { code?: unknown }).code !== "NOT_FOUND") throw nativeError(err, "listing our nftables tables", "");
      return false;
    }
  };
  // One run each: libnftables (1.0.6) finds only the first table of two `list table`
  // commands in one run.
  const found = [list(listCommands("inet")), list(listCommands("bridge"))];
  return found.some(Boolean) ? into : EMPTY_STATE;
}

/** Our rules in Docker's DOCKER-USER chain; undefined when there is no such chain (no Docker). */
function dockerUserRules(native: NativeNetworkApi): DockerUserRule[] | undefined {
  try {
    return readDockerUser(native.nftRun(document(listDockerUserCommands())));
  } catch (err) {
    if ((err as { code?: unknown }).code === "NOT_FOUND") return undefined;
    throw nativeError(err, "listing Docker's DOCKER-USER chain", "");
  }
}

/** With Docker on the host, `bridge`'s traffic let past its FORWARD policy (docker-user.ts). */
function allowThroughDocker(native: NativeNetworkApi, bridge: string): void {
  const existing = dockerUserRules(native);
  if (existing === undefined) return;
  const commands = allowBridgeCommands(bridge, existing);
  if (commands.length > 0) nft(native, "letting the network's traffic past Docker's FORWARD policy (its DOCKER-USER chain)", commands);
}

// --- input checks ------------------------------------------------------------------------

function checkDevice(value: unknown, field: string): string {
  if (typeof value !== "string" || !DEVICE.test(value) || value === "." || value === ".." || Buffer.byteLength(value) > 15) {
    throw new ValidationError(field, `${echo(value)} is not an interface name (1-15 bytes, no space, '/' or ':')`);
  }
  return value;
}

function checkServiceId(value: unknown, field: string): string {
  if (typeof value !== "string" || !SERVICE_ID.test(value)) {
    throw new ValidationError(field, `${echo(value)} is not a service id (letters, digits, '_', '.', '-'; at most 128)`);
  }
  return value;
}

function checkNetwork(network: NetworkDefinition): { subnet: ReturnType<typeof parseCidr>; gateway: string; bridge: string } {
  if (typeof network !== "object" || network === null) throw new ValidationError("network", "must be a network definition");
  const subnet = parseCidr(network.subnet, "network.subnet");
  const gateway = network.gateway;
  if (!cidrContains(subnet, parseAddress(gateway, "network.gateway"))) {
    throw new ValidationError("network.gateway", `${echo(gateway)} is not in the subnet ${formatCidr(subnet)}`);
  }
  if (typeof network.name !== "string" || network.name === "" || network.name.length > 63) {
    throw new ValidationError("network.name", `${echo(network.name)} is not a network name`);
  }
  if (!Array.isArray(network.dns)) throw new ValidationError("network.dns", "must be a list of addresses");
  network.dns.forEach((d, i) => parseAddress(d, `network.dns[${i}]`));
  return { subnet, gateway, bridge: checkDevice(network.bridge, "network.bridge") };
}

function checkPolicy(policy: EgressPolicy, field: string): EgressPolicy {
  if (typeof policy !== "object" || policy === null) throw new ValidationError(field, "must be an egress policy");
  if (policy.mode === "allow-all" || policy.mode === "deny-all") return { mode: policy.mode };
  if (policy.mode !== "allow") throw new ValidationError(`${field}.mode`, `${echo((policy as { mode?: unknown }).mode)} must be "allow-all", "deny-all" or "allow"`);
  if (!Array.isArray(policy.cidrs)) throw new ValidationError(`${field}.cidrs`, "must be a list of IPv4 CIDRs");
  // An empty list is deny-all with extra words: allowed, and it allows nothing.
  return { mode: "allow", cidrs: [...new Set(policy.cidrs.map((c, i) => canonicalCidr(c, `${field}.cidrs[${i}]`)))] };
}

function checkRules(rules: ServiceRules): ServiceRules {
  if (typeof rules !== "object" || rules === null) throw new ValidationError("rules", "must be service rules");
  const serviceId = checkServiceId(rules.serviceId, "serviceId");
  const a = rules.attachment;
  if (typeof a !== "object" || a === null) throw new ValidationError("attachment", "must be a network attachment");
  if (!isAddress(a.address)) throw new ValidationError("attachment.address", `${echo(a.address)} is not an IPv4 address`);
  if (typeof a.mac !== "string" || !MAC.test(a.mac)) throw new ValidationError("attachment.mac", `${echo(a.mac)} is not a MAC address (aa:bb:cc:dd:ee:ff)`);
  checkDevice(a.hostDevice, "attachment.hostDevice");
  checkDevice(a.bridge, "attachment.bridge");
  if (!Array.isArray(rules.ports)) throw new ValidationError("ports", "must be a list of published ports");
  const ports: PublishedPort[] = rules.ports.map((p, i) => checkPort(p, `ports[${i}]`));
  ports.forEach((p, i) => {
    const clash = ports.findIndex((q, j) => j < i && q.protocol === p.protocol && q.hostPort === p.hostPort && (q.hostAddress === undefined || p.hostAddress === undefined || q.hostAddress === p.hostAddress));
    if (clash >= 0) throw new ValidationError(`ports[${i}].hostPort`, `${p.protocol} ${p.hostPort} is already published by ports[${clash}]`);
  });
  return { serviceId, attachment: a, ports, policy: checkPolicy(rules.policy, "policy") };
}

function checkPort(port: PublishedPort, at: string): PublishedPort {
  if (typeof port !== "object" || port === null) throw new ValidationError(at, "must be a published port");
  for (const key of ["hostPort", "guestPort"] as const) {
    const v = port[key];
    if (!Number.isInteger(v) || v < 1 || v > 65535) throw new ValidationError(`${at}.${key}`, `${echo(v)} must be a port number 1-65535`);
  }
  if (port.protocol !== "tcp" && port.protocol !== "udp") throw new ValidationError(`${at}.protocol`, `${echo(port.protocol)} must be "tcp" or "udp"`);
  if (port.hostAddress !== undefined && port.hostAddress !== "0.0.0.0") {
    if (!isAddress(port.hostAddress)) throw new ValidationError(`${at}.hostAddress`, `${echo(port.hostAddress)} is not an IPv4 address`);
    return { hostPort: port.hostPort, guestPort: port.guestPort, protocol: port.protocol, hostAddress: port.hostAddress };
  }
  return { hostPort: port.hostPort, guestPort: port.guestPort, protocol: port.protocol };
}

/** FAILED_PRECONDITION when a socket on the host has the port: a bind probe, released at once. */
async function probePort(port: PublishedPort, field: string): Promise<void> {
  const host = port.hostAddress ?? "0.0.0.0";
  const refuse = (err: NodeJS.ErrnoException): VmctlError =>
    err.code === "EADDRINUSE"
      ? new VmctlError("FAILED_PRECONDITION", `${field}: ${port.protocol} port ${port.hostPort} is in use on the host (${host}): a process listens on it`, {
          details: { field },
        })
      : err.code === "EADDRNOTAVAIL"
        ? new ValidationError(field.replace(/hostPort$/, "hostAddress"), `${host} is not an address of this host`)
        : VmctlError.from(err, `${field}: probing ${port.protocol} port ${port.hostPort}`);
  if (port.protocol === "tcp") {
    await new Promise<void>((resolve, reject) => {
      const server = net.createServer();
      server.once("error", (err: NodeJS.ErrnoException) => reject(refuse(err)));
      server.listen({ port: port.hostPort, host, exclusive: true }, () => server.close(() => resolve()));
    });
  } else {
    await new Promise<void>((resolve, reject) => {
      const socket = dgram.createSocket({ type: "udp4" });
      socket.once("error", (err: NodeJS.ErrnoException) => {
        socket.close();
        reject(refuse(err));
      });
      socket.bind({ port: port.hostPort, address: host, exclusive: true }, () => socket.close(() => resolve()));
    });
  }
}
