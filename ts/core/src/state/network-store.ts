// Networks and address leases, in the state database beside the services (schema.ts,
// migration 4). Every method commits before it returns. A lease is chosen and written in
// one IMMEDIATE transaction, so no address is handed out twice, even to creates that race.
import type Database from "better-sqlite3";
import { VmctlError } from "../errors.js";
import type { EgressPolicy, NetworkDefinition, PublishedPort } from "../network/types.js";

/** A network as stored. */
export interface StoredNetwork extends NetworkDefinition {
  readonly createdAt: Date;
}

/** A service's lease on a network. */
export interface StoredLease {
  readonly serviceId: string;
  readonly network: string;
  readonly address: string;
  readonly mac: string;
  readonly hostDevice: string;
  readonly ports: readonly PublishedPort[];
  /** The service's own policy; absent: its network's. */
  readonly policy?: EgressPolicy;
  readonly createdAt: Date;
}

export interface LeaseRequest {
  readonly serviceId: string;
  readonly network: string;
  readonly mac: string;
  readonly hostDevice: string;
  readonly ports: readonly PublishedPort[];
  readonly policy?: EgressPolicy;
}

interface NetworkRow {
  name: string;
  subnet: string;
  gateway: string;
  bridge: string;
  dns: string;
  policy: string;
  created_at: number;
}

interface LeaseRow {
  service_id: string;
  network: string;
  address: string;
  mac: string;
  host_device: string;
  ports: string;
  policy: string | null;
  created_at: number;
}

function toNetwork(row: NetworkRow): StoredNetwork {
  return {
    name: row.name,
    subnet: row.subnet,
    gateway: row.gateway,
    bridge: row.bridge,
    dns: JSON.parse(row.dns) as string[],
    policy: JSON.parse(row.policy) as EgressPolicy,
    createdAt: new Date(row.created_at),
  };
}

function toLease(row: LeaseRow): StoredLease {
  return {
    serviceId: row.service_id,
    network: row.network,
    address: row.address,
    mac: row.mac,
    hostDevice: row.host_device,
    ports: JSON.parse(row.ports) as PublishedPort[],
    ...(row.policy === null ? {} : { policy: JSON.parse(row.policy) as EgressPolicy }),
    createdAt: new Date(row.created_at),
  };
}

const constraint = (err: unknown): string | undefined => {
  const code = (err as { code?: string }).code;
  return code?.startsWith("SQLITE_CONSTRAINT") ? code : undefined;
};

export class NetworkStore {
  readonly #db: Database.Database;
  readonly #stmt;

  constructor(db: Database.Database) {
    this.#db = db;
    this.#stmt = {
      networks: db.prepare<[], NetworkRow>(`SELECT * FROM networks ORDER BY created_at, name`),
      network: db.prepare<[string], NetworkRow>(`SELECT * FROM networks WHERE name = ?`),
      insertNetwork: db.prepare(
        `INSERT INTO networks (name, subnet, gateway, bridge, dns, policy, created_at) VALUES (@name, @subnet, @gateway, @bridge, @dns, @policy, @created_at)`,
      ),
      deleteNetwork: db.prepare<[string]>(`DELETE FROM networks WHERE name = ?`),
      leases: db.prepare<[], LeaseRow>(`SELECT * FROM network_leases ORDER BY created_at, service_id`),
      leasesIn: db.prepare<[string], LeaseRow>(`SELECT * FROM network_leases WHERE network = ? ORDER BY created_at, service_id`),
      lease: db.prepare<[string], LeaseRow>(`SELECT * FROM network_leases WHERE service_id = ?`),
      addressesIn: db.prepare<[string], { address: string }>(`SELECT address FROM network_leases WHERE network = ?`),
      insertLease: db.prepare(
        `INSERT INTO network_leases (service_id, network, address, mac, host_device, ports, policy, created_at)
         VALUES (@service_id, @network, @address, @mac, @host_device, @ports, @policy, @created_at)`,
      ),
      release: db.prepare<[string]>(`DELETE FROM network_leases WHERE service_id = ?`),
    };
  }

  networks(): StoredNetwork[] {
    return this.#stmt.networks.all().map(toNetwork);
  }

  network(name: string): StoredNetwork | undefined {
    const row = this.#stmt.network.get(name);
    return row === undefined ? undefined : toNetwork(row);
  }

  /**
   * Records a network. `check` sees the networks already stored, inside the transaction,
   * and throws to refuse (an overlapping subnet). A name taken is ALREADY_EXISTS on "name".
   */
  createNetwork(network: NetworkDefinition, check: (existing: readonly StoredNetwork[]) => void = () => {}): StoredNetwork {
    const now = Date.now();
    try {
      this.#db
        .transaction(() => {
          if (this.#stmt.network.get(network.name) !== undefined) throw nameTaken(network.name);
          check(this.networks());
          this.#stmt.insertNetwork.run({
            name: network.name,
            subnet: network.subnet,
            gateway: network.gateway,
            bridge: network.bridge,
            dns: JSON.stringify(network.dns),
            policy: JSON.stringify(network.policy),
            created_at: now,
          });
        })
        .immediate();
    } catch (err) {
      if (constraint(err) === undefined) throw err;
      const message = String((err as Error).message);
      if (message.includes("networks.name")) throw nameTaken(network.name);
      if (message.includes("networks.subnet")) {
        throw new VmctlError("INVALID_ARGUMENT", `subnet: ${network.subnet} is already another network's`, { cause: err, details: { field: "subnet" } });
      }
      throw err;
    }
    return { ...network, createdAt: new Date(now) };
  }

  /** Forgets a network; FAILED_PRECONDITION while a lease is on it. False when there was none. */
  deleteNetwork(name: string): boolean {
    try {
      return this.#stmt.deleteNetwork.run(name).changes > 0;
    } catch (err) {
      if (constraint(err) === undefined) throw err;
      const users = this.leasesIn(name).map((l) => l.serviceId);
      throw new VmctlError("FAILED_PRECONDITION", `network ${name} is used by services ${users.join(", ")}; delete them first`, {
        cause: err,
        details: { field: "name" },
      });
    }
  }

  leases(): StoredLease[] {
    return this.#stmt.leases.all().map(toLease);
  }

  leasesIn(network: string): StoredLease[] {
    return this.#stmt.leasesIn.all(network).map(toLease);
  }

  leaseOf(serviceId: string): StoredLease | undefined {
    const row = this.#stmt.lease.get(serviceId);
    return row === undefined ? undefined : toLease(row);
  }

  /**
   * Leases an address on `request.network` to a service, durably: `pick` chooses among the
   * addresses not taken (undefined: the subnet is full, RESOURCE_EXHAUSTED on "network"),
   * `check` sees every other lease and throws to refuse (a published port taken).
   */
  lease(request: LeaseRequest, pick: (taken: ReadonlySet<string>) => string | undefined, check: (others: readonly StoredLease[]) => void = () => {}): StoredLease {
    const now = Date.now();
    const write = this.#db
      .transaction(() => {
        check(this.leases());
        const taken = new Set(this.#stmt.addressesIn.all(request.network).map((r) => r.address));
        const chosen = pick(taken);
        if (chosen === undefined) {
          throw new VmctlError("RESOURCE_EXHAUSTED", `network: ${request.network} has no free address left`, { details: { field: "network" } });
        }
        this.#stmt.insertLease.run({
          service_id: request.serviceId,
          network: request.network,
          address: chosen,
          mac: request.mac,
          host_device: request.hostDevice,
          ports: JSON.stringify(request.ports),
          policy: request.policy === undefined ? null : JSON.stringify(request.policy),
          created_at: now,
        });
        return chosen;
      });
    let address: string;
    try {
      address = write.immediate();
    } catch (err) {
      // UNIQUE (network, address) or (service_id): the allocator or the caller is wrong, never the client.
      if (constraint(err) !== undefined) throw new VmctlError("INTERNAL", `leasing an address on ${request.network}: ${(err as Error).message}`, { cause: err });
      throw err;
    }
    return { ...request, address, createdAt: new Date(now) };
  }

  /** The service's lease is gone; false when it had none. */
  release(serviceId: string): boolean {
    return this.#stmt.release.run(serviceId).changes > 0;
  }
}

function nameTaken(name: string): VmctlError {
  return new VmctlError("ALREADY_EXISTS", `name: a network named "${name}" already exists`, { details: { field: "name" } });
}
