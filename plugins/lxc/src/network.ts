// Managed bridge networking: the bridge the plugin creates (iproute2), the address plan
// of its subnet, the per-service names (host-side veth, MAC), and the address pool that
// survives orchestrator restarts and concurrent creates (one exclusive file per address).
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { linkSync, mkdirSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { VmctlError } from "@vmctl/core/contract";

export const DEFAULT_BRIDGE = "vmctl-lxc0";
export const DEFAULT_SUBNET = "10.213.0.0/24";

/** The bridge and its IPv4 subnet; the host side (the gateway) is the subnet's first address. */
export interface BridgeNetwork {
  readonly bridge: string;
  /** The subnet as written, normalised: "10.213.0.0/24". */
  readonly subnet: string;
  /** The network address as a 32-bit number. */
  readonly network: number;
  readonly prefix: number;
  /** The bridge's own address, the containers' default gateway: network + 1. */
  readonly gateway: string;
  /** The broadcast address. */
  readonly broadcast: string;
}

/** A service's place on the bridge, written into its LXC config. */
export interface BridgeAttachment {
  readonly bridge: string;
  readonly address: string;
  readonly prefix: number;
  readonly gateway: string;
  readonly broadcast: string;
  /** The host-side veth's name (≤ 15 characters), derived from the service id so cleanup can find it. */
  readonly hostVeth: string;
  /** A locally administered MAC derived from the address (stable per service). */
  readonly hwaddr: string;
}

/** Interface names: what the kernel takes (≤ 15 bytes, no '/', ':' or whitespace), kept to a safe set. */
const IFNAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;

function invalid(option: string, problem: string): VmctlError {
  return new VmctlError("INVALID_ARGUMENT", `targets.lxc.${option}: ${problem}`, { details: { field: `targets.lxc.${option}`, target: "lxc" } });
}

/** `bridge` and `subnet` target options (`targets.lxc` in the orchestrator config), checked at init. */
export function parseNetworkOptions(options: Readonly<Record<string, unknown>>): BridgeNetwork {
  const bridge = options.bridge ?? DEFAULT_BRIDGE;
  if (typeof bridge !== "string" || !IFNAME.test(bridge)) {
    throw invalid("bridge", 'must be a network interface name: 1-15 characters of letters, digits, "_", "." and "-"');
  }
  const subnet = options.subnet ?? DEFAULT_SUBNET;
  if (typeof subnet !== "string") throw invalid("subnet", 'must be an IPv4 subnet like "10.213.0.0/24"');
  const m = /^(\d{1,3}(?:\.\d{1,3}){3})\/(\d{1,2})$/.exec(subnet);
  const base = m ? ipToInt(m[1]!) : undefined;
  const prefix = m ? Number(m[2]) : NaN;
  if (base === undefined || !(prefix >= 8 && prefix <= 30)) {
    throw invalid("subnet", 'must be an IPv4 subnet like "10.213.0.0/24" (prefix length 8 to 30)');
  }
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  if ((base & mask) >>> 0 !== base) {
    throw invalid("subnet", `${subnet} has host bits set: the network address is ${intToIp((base & mask) >>> 0)}/${prefix}`);
  }
  return {
    bridge,
    subnet: `${intToIp(base)}/${prefix}`,
    network: base,
    prefix,
    gateway: intToIp(base + 1),
    broadcast: intToIp((base | ~mask) >>> 0),
  };
}

export function ipToInt(text: string): number | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined;
    n = n * 256 + Number(p);
  }
  return n;
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

/** Addresses services may get: the subnet without its network address, the gateway and the broadcast. */
export function hostRange(net: BridgeNetwork): { first: number; count: number } {
  const size = 2 ** (32 - net.prefix);
  return { first: net.network + 2, count: size - 3 };
}

/** The host-side veth name for a service: "vlxc" + 11 hex digits of a digest of its id (15 characters). */
export function hostVethFor(serviceId: string): string {
  return `vlxc${createHash("sha256").update(serviceId).digest("hex").slice(0, 11)}`;
}

/** A locally administered unicast MAC carrying the address (02:4c:a:b:c:d): unique on the bridge while addresses are. */
export function hwaddrFor(address: string): string {
  const n = ipToInt(address) ?? 0;
  const bytes = [0x02, 0x4c, n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
  return bytes.map((b) => b.toString(16).padStart(2, "0")).join(":");
}

export function attachmentFor(net: BridgeNetwork, serviceId: string, address: string): BridgeAttachment {
  return {
    bridge: net.bridge,
    address,
    prefix: net.prefix,
    gateway: net.gateway,
    broadcast: net.broadcast,
    hostVeth: hostVethFor(serviceId),
    hwaddr: hwaddrFor(address),
  };
}

/**
 * The addresses handed out on one subnet, as files `<dir>/<address>` holding the owning
 * service's id. A claim is an atomic exclusive create (a complete temp file hard-linked
 * to the address's name: link(2) fails if the name exists), so concurrent creates — in
 * this process or another orchestrator process over the same state dir — never get the
 * same address, and a crash leaves either a whole claim or none. The files outlive the
 * orchestrator, so a restarted one sees what is taken.
 */
export class AddressPool {
  constructor(
    readonly dir: string,
    readonly net: BridgeNetwork,
  ) {}

  /** The address `serviceId` holds, if any. */
  lookup(serviceId: string): string | undefined {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return undefined;
    }
    for (const name of names) {
      if (name.startsWith(".")) continue;
      if (this.#owner(name) === serviceId) return name;
    }
    return undefined;
  }

  /**
   * The service's address: the one it holds already (idempotent across a crash between
   * claim and config), else a free one, tried from a point derived from the service id.
   * RESOURCE_EXHAUSTED when every address of the subnet is taken.
   */
  claim(serviceId: string): string {
    const held = this.lookup(serviceId);
    if (held !== undefined) return held;
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const { first, count } = hostRange(this.net);
    const start = createHash("sha256").update(serviceId).digest().readUInt32BE(0) % count;
    const tmp = join(this.dir, `.claim-${process.pid}-${randomBytes(6).toString("hex")}`);
    writeFileSync(tmp, serviceId, { mode: 0o600 });
    try {
      for (let i = 0; i < count; i++) {
        const address = intToIp(first + ((start + i) % count));
        try {
          linkSync(tmp, join(this.dir, address));
          return address;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
        }
      }
    } finally {
      rmSync(tmp, { force: true });
    }
    throw new VmctlError(
      "RESOURCE_EXHAUSTED",
      `no free address on bridge ${this.net.bridge}: all ${count} addresses of ${this.net.subnet} are taken (set targets.lxc.subnet to a larger subnet)`,
      { details: { serviceId, target: "lxc", field: "spec.network" } },
    );
  }

  /** Gives the address back, only if `serviceId` holds it. */
  release(serviceId: string, address: string): void {
    if (this.#owner(address) !== serviceId) return;
    try {
      unlinkSync(join(this.dir, address));
    } catch {
      // released meanwhile
    }
  }

  /** Every claim, address → service id. */
  claims(): Map<string, string> {
    const out = new Map<string, string>();
    let names: string[] = [];
    try {
      names = readdirSync(this.dir);
    } catch {
      return out;
    }
    for (const name of names) {
      if (name.startsWith(".")) continue;
      const owner = this.#owner(name);
      if (owner !== undefined) out.set(name, owner);
    }
    return out;
  }

  #owner(address: string): string | undefined {
    try {
      return readFileSync(join(this.dir, address), "utf8");
    } catch {
      return undefined;
    }
  }
}

interface IpResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** The iproute2 commands the bridge needs. Every call is one `ip` process. */
export class BridgeTool {
  #ready: Promise<void> | undefined;

  constructor(
    readonly ip: string,
    readonly net: BridgeNetwork,
  ) {}

  /**
   * Makes sure the bridge exists, is a bridge, has the gateway address and is up —
   * creating it when missing (idempotent; a concurrent creator's "File exists" is fine).
   * It stays when services go (like docker0). Remembered once it succeeded; a bridge
   * someone deleted later is made again when the link check fails.
   */
  async ensure(): Promise<void> {
    if (this.#ready !== undefined && (await this.exists(this.net.bridge))) return this.#ready;
    this.#ready = this.#ensure();
    this.#ready.catch(() => (this.#ready = undefined));
    return this.#ready;
  }

  async #ensure(): Promise<void> {
    const { bridge, gateway, prefix, broadcast } = this.net;
    // A fixed MAC: a bridge without one takes its lowest port's, so it would change as
    // veths come and go, and the containers' ARP entries for the gateway would go stale.
    const mac = hwaddrFor(gateway);
    const add = await this.#run(["link", "add", "name", bridge, "address", mac, "type", "bridge"]);
    if (add.code !== 0 && !/exists/i.test(add.stderr)) throw this.#fail(`could not create bridge ${bridge}`, add);
    const kind = await this.#run(["-d", "-j", "link", "show", "dev", bridge]);
    let info: { linkinfo?: { info_kind?: string } }[] = [];
    try {
      info = JSON.parse(kind.stdout) as typeof info;
    } catch {
      // checked below
    }
    if (info[0]?.linkinfo?.info_kind !== "bridge") {
      throw new VmctlError("FAILED_PRECONDITION", `network interface ${bridge} exists but is not a bridge (set targets.lxc.bridge to another name)`, {
        details: { target: "lxc", field: "targets.lxc.bridge" },
      });
    }
    // 3 = NET_ADDR_SET: the MAC was given (by us at creation, or by an admin); otherwise fix it now.
    const assigned = (await readFile(`/sys/class/net/${bridge}/addr_assign_type`, "utf8").catch(() => "")).trim();
    if (assigned !== "3") {
      const set = await this.#run(["link", "set", "dev", bridge, "address", mac]);
      if (set.code !== 0) throw this.#fail(`could not give bridge ${bridge} the address ${mac}`, set);
    }
    const addr = await this.#run(["addr", "add", `${gateway}/${prefix}`, "broadcast", broadcast, "dev", bridge]);
    if (addr.code !== 0 && !/exists|already assigned/i.test(addr.stderr)) throw this.#fail(`could not give bridge ${bridge} the address ${gateway}/${prefix}`, addr);
    const up = await this.#run(["link", "set", "dev", bridge, "up"]);
    if (up.code !== 0) throw this.#fail(`could not bring bridge ${bridge} up`, up);
  }

  async exists(name: string): Promise<boolean> {
    return (await this.#run(["link", "show", "dev", name])).code === 0;
  }

  /** Deletes a network interface if it exists (a host-side veth a crash left behind). */
  async remove(name: string): Promise<void> {
    if (!(await this.exists(name))) return;
    const r = await this.#run(["link", "del", "dev", name]);
    if (r.code !== 0 && (await this.exists(name))) throw this.#fail(`could not delete the stale interface ${name}`, r);
  }

  #fail(what: string, r: IpResult): VmctlError {
    return new VmctlError("FAILED_PRECONDITION", `${what}: ${r.stderr.trim() || `ip exited with ${r.code}`}`, {
      details: { target: "lxc", field: "spec.network" },
    });
  }

  #run(args: readonly string[]): Promise<IpResult> {
    return new Promise((resolve) => {
      execFile(this.ip, args, { encoding: "utf8" }, (err, stdout, stderr) => {
        if (err && typeof (err as NodeJS.ErrnoException).code === "string") {
          resolve({ code: null, stdout: "", stderr: `${this.ip}: ${(err as Error).message}` });
          return;
        }
        resolve({ code: err ? ((err as { code?: number | null }).code ?? null) : 0, stdout, stderr });
      });
    });
  }
}
