// Networks for services: the engine's side of networking. It owns the networks and the
// address leases (state/network-store.ts) and drives the host through HostNetworkOps
// (bridges, NAT, published ports, egress rules); a target makes only the service's own
// device. Order, for nothing to leak: the lease is durable before anything is made on the
// host; the host rules follow once the target has made its device (apply); on delete or a
// failed create, the rules and the device go before the lease (detach). Start-up
// (reconcile) re-applies what the leases say and removes whatever of ours on the host no
// lease or network accounts for.
import dgram from "node:dgram";
import { readFile } from "node:fs/promises";
import net from "node:net";
import type { Logger, ServiceNetwork } from "../contract/target.js";
import { echo } from "../contract/limits.js";
import { ValidationError, VmctlError } from "../errors.js";
import { parseAddress, parseCidr, cidrOverlaps, formatCidr, type Cidr } from "../network/ipv4.js";
import { pickAddress, pickSubnet, planSubnet } from "../network/address-allocator.js";
import { checkDns, checkNetworkName, checkPolicy, checkSubnet, DEFAULT_NETWORK, portsClash } from "../network/network-input.js";
import { bridgeName, hostDeviceName, macFor } from "../network/network-names.js";
import { attachmentOf, prefixOf, rulesOf } from "../network/service-network-info.js";
import type { EgressPolicy, HostNetworkOps, NetworkDefinition, PublishedPort } from "../network/types.js";
import type { StoredLease, StoredNetwork } from "../state/network-store.js";
import type { StateStore } from "../state/state-store.js";
import type { CreateNetworkInput, NetworkRecord } from "./api.js";
import type { NetworkRequest } from "./create-input.js";

/**
 * Where networks without a subnet of their own ("default" among them) get one. 10.213/16
 * because the usual neighbours keep out of it: Docker (172.17-31/16, 192.168/16), libvirt
 * (192.168.122/24), Podman (10.88/16), LXD (a random 10.x/24), Kubernetes (10.96/12 and
 * 10.244/16). Overlaps with the host's own subnets are skipped anyway.
 */
export const DEFAULT_POOL = "10.213.0.0/16";
/** A /24 per network: 253 guests each, 256 networks from the default pool. */
export const DEFAULT_POOL_PREFIX = 24;

export interface NetworkingOptions {
  /** The host side; absent: a service asking for a network is refused (FAILED_PRECONDITION on "network"). */
  readonly host?: HostNetworkOps;
  /** The pool subnets are carved from (config `network.pool`); default DEFAULT_POOL. */
  readonly pool?: string;
  /** The prefix length of each subnet carved (config `network.poolPrefix`); default 24. */
  readonly poolPrefix?: number;
  /** Where the host's resolvers are read from; default /etc/resolv.conf. */
  readonly resolvConf?: string;
}

/** What start-up found of ours on the host and removed. */
export interface NetworkReconcileReport {
  /** Services whose rules were removed: they have no lease (their service is gone). */
  readonly rulesRemoved: string[];
  /** Host devices removed: no lease names them. */
  readonly devicesRemoved: string[];
  /** Bridges removed: no network has them. */
  readonly bridgesRemoved: string[];
}

/** The pool and the prefix length of what is carved from it (config `network.pool`, `network.poolPrefix`), checked. */
export function checkSubnetPool(pool: unknown = DEFAULT_POOL, prefix: unknown = DEFAULT_POOL_PREFIX): { pool: Cidr; prefix: number } {
  const cidr = parseCidr(pool, "network.pool");
  if (typeof prefix !== "number" || !Number.isInteger(prefix) || prefix < Math.max(cidr.prefix, 16) || prefix > 29) {
    throw new ValidationError("network.poolPrefix", `${echo(prefix)} must be from /${Math.max(cidr.prefix, 16)} to /29`);
  }
  return { pool: cidr, prefix };
}

/** The host's non-loopback IPv4 resolvers in a resolv.conf. */
export function resolversIn(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split("\n")) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (m === null) continue;
    try {
      const n = parseAddress(m[1], "nameserver");
      if (n >= 127 * 2 ** 24 && n < 128 * 2 ** 24) continue; // a local stub (systemd-resolved): guests cannot reach it
      if (!out.includes(m[1] as string)) out.push(m[1] as string);
    } catch {
      // IPv6 or garbage: not for our IPv4 guests
    }
  }
  return out;
}

export class ServiceNetworks {
  readonly #store: StateStore;
  readonly #host: HostNetworkOps | undefined;
  readonly #pool: Cidr;
  readonly #poolPrefix: number;
  readonly #resolvConf: string;
  readonly #log: Logger;
  /** Network-wide changes (a lease with its network, a network made or removed) one at a time. */
  #serial: Promise<unknown> = Promise.resolve();
  /** Networks ensured on the host by this process. */
  readonly #ensured = new Set<string>();

  constructor(store: StateStore, options: NetworkingOptions, log: Logger) {
    this.#store = store;
    this.#host = options.host;
    ({ pool: this.#pool, prefix: this.#poolPrefix } = checkSubnetPool(options.pool, options.poolPrefix));
    this.#resolvConf = options.resolvConf ?? "/etc/resolv.conf";
    this.#log = log;
  }

  #exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#serial.then(work, work);
    this.#serial = run.catch(() => undefined);
    return run;
  }

  #requireHost(field: string): HostNetworkOps {
    if (this.#host === undefined) {
      throw new VmctlError("FAILED_PRECONDITION", `${field}: this vmctld has no host networking`, { details: { field } });
    }
    return this.#host;
  }

  // ---- a service's network ----------------------------------------------------------

  /**
   * Before anything of the service is recorded: the network exists (or is "default"),
   * and each published port is free — no other service publishes it, nothing on the host
   * listens on it.
   */
  async precheck(request: NetworkRequest): Promise<void> {
    this.#requireHost("network");
    if (request.network !== DEFAULT_NETWORK && this.#store.networks.network(request.network) === undefined) {
      throw new VmctlError("NOT_FOUND", `network: no network named ${echo(request.network)} (vmctl network ls)`, { details: { field: "network" } });
    }
    refuseTakenPorts(request.ports, this.#store.networks.leases());
    for (const [i, port] of request.ports.entries()) await probePort(port, `ports[${i}]`);
  }

  /** Leases the service its address (durably) and makes its network on the host; what its target is handed. */
  attach(serviceId: string, request: NetworkRequest): Promise<ServiceNetwork> {
    const host = this.#requireHost("network");
    return this.#exclusive(async () => {
      const network = request.network === DEFAULT_NETWORK ? await this.#materialiseDefault(host) : this.#store.networks.network(request.network);
      if (network === undefined) {
        throw new VmctlError("NOT_FOUND", `network: no network named ${echo(request.network)}`, { details: { field: "network" } });
      }
      const plan = planSubnet(parseCidr(network.subnet, "subnet"));
      const lease = this.#store.networks.lease(
        {
          serviceId,
          network: network.name,
          mac: macFor(serviceId),
          hostDevice: hostDeviceName(serviceId),
          ports: request.ports,
          ...(request.policy === undefined ? {} : { policy: request.policy }),
        },
        (taken) => pickAddress(plan, taken),
        (others) => refuseTakenPorts(request.ports, others),
      );
      await this.#ensure(host, network);
      return this.#serviceNetwork(host, lease, network);
    });
  }

  /** What the target of a service with a lease is handed (adopt, teardown); undefined without one. */
  context(serviceId: string): ServiceNetwork | undefined {
    const lease = this.#store.networks.leaseOf(serviceId);
    if (lease === undefined || this.#host === undefined) return undefined;
    const network = this.#store.networks.network(lease.network);
    return network === undefined ? undefined : this.#serviceNetwork(this.#host, lease, network);
  }

  #serviceNetwork(host: HostNetworkOps, lease: StoredLease, network: NetworkDefinition): ServiceNetwork {
    const attachment = attachmentOf(lease, network);
    return {
      attachment,
      createTap: () => host.createTap(attachment),
      deleteDevice: () => host.deleteDevice(attachment.hostDevice),
    };
  }

  /** The service's host rules (published ports, egress policy), once its device exists. */
  async apply(serviceId: string): Promise<void> {
    const lease = this.#store.networks.leaseOf(serviceId);
    if (lease === undefined) return;
    const network = this.#store.networks.network(lease.network);
    if (network === undefined) return;
    await this.#requireHost("network").applyService(rulesOf(lease, network));
  }

  /** Rules, device, lease: gone, in that order. Idempotent; a service without a lease has nothing to undo. */
  async detach(serviceId: string): Promise<void> {
    const lease = this.#store.networks.leaseOf(serviceId);
    if (lease === undefined) return;
    const host = this.#requireHost("network");
    await host.removeService(serviceId);
    await host.deleteDevice(lease.hostDevice);
    this.#store.networks.release(serviceId);
  }

  // ---- networks ----------------------------------------------------------------------

  async #hostResolvers(): Promise<string[]> {
    try {
      return resolversIn(await readFile(this.#resolvConf, "utf8"));
    } catch {
      return [];
    }
  }

  /** The next free subnet of the pool: clear of every network's and of the host's own. */
  async #freeSubnet(host: HostNetworkOps, field: string): Promise<Cidr> {
    const used = [...this.#store.networks.networks().map((n) => n.subnet), ...(await host.hostSubnets())].map((s) => parseCidr(s, "subnet", { loose: true }));
    const subnet = pickSubnet(this.#pool, this.#poolPrefix, used);
    if (subnet === undefined) {
      throw new VmctlError("RESOURCE_EXHAUSTED", `${field}: the pool ${formatCidr(this.#pool)} has no free /${this.#poolPrefix} left (set network.pool)`, {
        details: { field },
      });
    }
    return subnet;
  }

  async #definition(name: string, subnet: Cidr, dns: readonly string[] | undefined, policy: EgressPolicy): Promise<NetworkDefinition> {
    const plan = planSubnet(subnet);
    return {
      name,
      subnet: plan.subnet,
      gateway: plan.gateway,
      bridge: bridgeName(name),
      dns: dns !== undefined && dns.length > 0 ? [...dns] : await this.#hostResolvers(),
      policy,
    };
  }

  /** "default" as stored, written on its first use with the pool's next subnet. Call exclusively. */
  async #materialiseDefault(host: HostNetworkOps): Promise<StoredNetwork> {
    const existing = this.#store.networks.network(DEFAULT_NETWORK);
    if (existing !== undefined) return existing;
    const definition = await this.#definition(DEFAULT_NETWORK, await this.#freeSubnet(host, "network"), undefined, { mode: "allow-all" });
    this.#log.info("default network made", { subnet: definition.subnet, bridge: definition.bridge });
    return this.#store.networks.createNetwork(definition);
  }

  async #ensure(host: HostNetworkOps, network: NetworkDefinition): Promise<void> {
    if (this.#ensured.has(network.name)) return;
    await host.ensureNetwork(network);
    this.#ensured.add(network.name);
  }

  /** A named network: checked, recorded, made on the host (undone if that fails). */
  async create(input: CreateNetworkInput): Promise<NetworkRecord> {
    if (typeof input !== "object" || input === null) throw new ValidationError("request", "must be an object");
    const name = checkNetworkName(input.name, "name");
    const requested = input.subnet === undefined || input.subnet === "" ? undefined : checkSubnet(input.subnet, "subnet");
    const dns = checkDns(input.dns, "dns");
    const policy = input.policy === undefined || input.policy === null ? ({ mode: "allow-all" } as const) : checkPolicy(input.policy, "policy");
    const host = this.#requireHost("name");
    return this.#exclusive(async () => {
      if (this.#store.networks.network(name) !== undefined) {
        throw new VmctlError("ALREADY_EXISTS", `name: a network named "${name}" already exists`, { details: { field: "name" } });
      }
      let subnet = requested;
      if (subnet !== undefined) {
        for (const hostSubnet of await host.hostSubnets()) {
          if (cidrOverlaps(subnet, parseCidr(hostSubnet, "subnet", { loose: true }))) {
            throw new ValidationError("subnet", `${formatCidr(subnet)} overlaps the host's own ${hostSubnet}`);
          }
        }
      } else subnet = await this.#freeSubnet(host, "subnet");
      const definition = await this.#definition(name, subnet, dns, policy);
      const stored = this.#store.networks.createNetwork(definition, (existing) => {
        const clash = existing.find((n) => cidrOverlaps(subnet, parseCidr(n.subnet, "subnet")));
        if (clash !== undefined) throw new ValidationError("subnet", `${definition.subnet} overlaps network ${clash.name} (${clash.subnet})`);
      });
      try {
        await host.ensureNetwork(definition);
        this.#ensured.add(name);
      } catch (err) {
        await host.removeNetwork(definition).catch((cleanup: unknown) => this.#log.warn("could not undo a network that failed", { network: name, err: cleanup }));
        this.#store.networks.deleteNetwork(name);
        throw VmctlError.from(err, `making network ${name} on the host`);
      }
      return this.#record(stored);
    });
  }

  list(): NetworkRecord[] {
    const byNetwork = new Map<string, string[]>();
    for (const lease of this.#store.networks.leases()) byNetwork.set(lease.network, [...(byNetwork.get(lease.network) ?? []), lease.serviceId]);
    return this.#store.networks.networks().map((n) => this.#record(n, byNetwork.get(n.name) ?? []));
  }

  get(name: string): NetworkRecord {
    const network = this.#store.networks.network(checkNetworkName(name, "name"));
    if (network === undefined) throw new VmctlError("NOT_FOUND", `name: no network named ${echo(name)}`, { details: { field: "name" } });
    return this.#record(network);
  }

  #record(network: StoredNetwork, services = this.#store.networks.leasesIn(network.name).map((l) => l.serviceId)): NetworkRecord {
    return { ...network, prefixLength: prefixOf(network.subnet), services };
  }

  /** Removes a network no service is on: its rules and bridge, then its row. */
  async delete(name: string): Promise<void> {
    checkNetworkName(name, "name");
    const host = this.#requireHost("name");
    await this.#exclusive(async () => {
      const network = this.#store.networks.network(name);
      if (network === undefined) throw new VmctlError("NOT_FOUND", `name: no network named ${echo(name)}`, { details: { field: "name" } });
      const users = this.#store.networks.leasesIn(name).map((l) => this.#store.get(l.serviceId)?.name ?? l.serviceId);
      if (users.length > 0) {
        throw new VmctlError("FAILED_PRECONDITION", `name: network ${name} is used by ${users.join(", ")}; delete those services first`, {
          details: { field: "name" },
        });
      }
      await host.removeNetwork(network);
      this.#ensured.delete(name);
      this.#store.networks.deleteNetwork(name);
    });
  }

  // ---- start-up --------------------------------------------------------------------

  /**
   * After the services are reconciled: every network and every lease is as the state
   * says on the host again (idempotent), and whatever of ours the host holds that no
   * network or lease accounts for goes — rules of services that are gone, their devices,
   * bridges of networks that are gone.
   */
  async reconcile(): Promise<NetworkReconcileReport> {
    const report: NetworkReconcileReport = { rulesRemoved: [], devicesRemoved: [], bridgesRemoved: [] };
    const host = this.#host;
    const networks = this.#store.networks.networks();
    // Nothing is made on the host before its network is recorded: without one, there is nothing of ours to find.
    if (host === undefined || networks.length === 0) return report;
    try {
      await this.#reconcileWith(host, networks, report);
    } catch (err) {
      // The daemon still serves: services without a network are not held hostage.
      this.#log.error("could not reconcile host networking; the next start will try again", { err });
    }
    if (report.rulesRemoved.length + report.devicesRemoved.length + report.bridgesRemoved.length > 0) {
      this.#log.info("removed host networking no service or network owns", { ...report });
    }
    return report;
  }

  async #reconcileWith(host: HostNetworkOps, networks: readonly StoredNetwork[], report: NetworkReconcileReport): Promise<void> {
    const leases = this.#store.networks.leases();
    const inventory = await host.inventory();
    const leased = new Set(leases.map((l) => l.serviceId));
    const devices = new Set(leases.map((l) => l.hostDevice));
    const bridges = new Set(networks.map((n) => n.bridge));
    for (const serviceId of inventory.services) {
      if (leased.has(serviceId)) continue;
      await host.removeService(serviceId);
      report.rulesRemoved.push(serviceId);
    }
    for (const device of inventory.devices) {
      if (devices.has(device)) continue;
      await host.deleteDevice(device);
      report.devicesRemoved.push(device);
    }
    for (const bridge of inventory.bridges) {
      if (bridges.has(bridge)) continue;
      await host.removeNetwork(orphanBridge(bridge));
      report.bridgesRemoved.push(bridge);
    }
    // What the state says, made again where the host lost it (a reboot, a hand-deleted
    // bridge); a service whose rules are there keeps them as they are.
    for (const network of networks) {
      try {
        await this.#ensure(host, network);
      } catch (err) {
        this.#log.error("could not make a network on the host again", { network: network.name, err });
      }
    }
    const ruled = new Set(inventory.services);
    for (const lease of leases) {
      const network = networks.find((n) => n.name === lease.network);
      if (network === undefined || ruled.has(lease.serviceId)) continue;
      try {
        await host.applyService(rulesOf(lease, network));
      } catch (err) {
        this.#log.error("could not apply a service's host rules again", { service: lease.serviceId, err });
      }
    }
  }
}

/** A bridge of ours whose network is gone, as removeNetwork takes it: only its name is known. */
function orphanBridge(bridge: string): NetworkDefinition {
  return { name: bridge, subnet: "0.0.0.0/32", gateway: "0.0.0.0", bridge, dns: [], policy: { mode: "allow-all" } };
}

/** ALREADY_EXISTS on the first of `ports` another service publishes. */
function refuseTakenPorts(ports: readonly PublishedPort[], others: readonly StoredLease[]): void {
  for (const [i, port] of ports.entries()) {
    const owner = others.find((l) => l.ports.some((p) => portsClash(p, port)));
    if (owner !== undefined) {
      throw new VmctlError("ALREADY_EXISTS", `ports[${i}].hostPort: ${port.protocol} ${port.hostPort} is already published by service ${owner.serviceId}`, {
        details: { field: `ports[${i}].hostPort`, serviceId: owner.serviceId },
      });
    }
  }
}

/** Binds the port for a moment: in use on the host is ALREADY_EXISTS, an address the host lacks is INVALID_ARGUMENT. */
async function probePort(port: PublishedPort, at: string): Promise<void> {
  const host = port.hostAddress ?? "0.0.0.0";
  try {
    if (port.protocol === "tcp") {
      const server = net.createServer();
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen({ port: port.hostPort, host, exclusive: true }, resolve);
      });
      await new Promise<void>((resolve) => server.close(() => resolve()));
    } else {
      const socket = dgram.createSocket("udp4");
      try {
        await new Promise<void>((resolve, reject) => {
          socket.once("error", reject);
          socket.bind({ port: port.hostPort, address: host, exclusive: true }, resolve);
        });
      } finally {
        try {
          socket.close();
        } catch {
          // never bound: nothing to close
        }
      }
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EADDRINUSE") {
      throw new VmctlError("ALREADY_EXISTS", `${at}.hostPort: ${port.protocol} ${port.hostPort} is in use on the host`, { details: { field: `${at}.hostPort` } });
    }
    if (code === "EADDRNOTAVAIL") throw new ValidationError(`${at}.hostAddress`, `${port.hostAddress ?? host} is not an address of this host`);
    throw VmctlError.from(err, `${at}: checking ${port.protocol} ${port.hostPort} on the host`);
  }
}
