// A small internet in namespaces, for testing the host side of networking for real:
//
//   [guest ns] eth0 ──veth── <hostDevice> ─ bridge ─ [host ns] uplink0 ──veth── up0 [internet ns]
//   10.x.y.z (the attachment's)                      203.0.113.1/24           203.0.113.2/24
//                                                    default via .2           lo: 198.51.100.7, 169.254.169.254
//
// The host namespace is where the code under test runs (HostNetworkInNamespace); the
// internet namespace answers TCP 80 and UDP 53 on all its addresses with the address it
// saw the client come from (so NAT shows), including a stand-in for the cloud metadata
// address. A guest is a namespace behind a veth whose host end is named like the service's
// host device and attached to the bridge, in place of a VM's TAP (a TAP carries no
// namespace's traffic without a VM; the bridge and the rules see a veth port the same way).
import type { NetworkAttachment } from "../types.js";
import { HostNetworkInNamespace } from "./host-network-in-namespace.js";
import { NetNamespace, vethPair } from "./netns.js";
import { startProbeServer } from "./probes.js";

export const UPLINK = { host: "203.0.113.1", internet: "203.0.113.2", prefix: 24, device: "uplink0" } as const;
/** An address in the internet namespace outside the uplink's subnet (for allow-CIDR tests). */
export const FAR_ADDRESS = "198.51.100.7";
export const METADATA_ADDRESS = "169.254.169.254";
/** Ports the internet namespace answers on. */
export const INTERNET_PORTS = { tcp: 80, udp: 53 } as const;

export class NetworkLab {
  readonly #guests: NetNamespace[] = [];

  private constructor(
    readonly host: NetNamespace,
    readonly internet: NetNamespace,
    readonly ops: HostNetworkInNamespace,
  ) {}

  static async create(label: string): Promise<NetworkLab> {
    const host = await NetNamespace.create(`${label}-host`);
    const internet = await NetNamespace.create(`${label}-inet`).catch(async (err: unknown) => {
      await host.delete();
      throw err;
    });
    try {
      await vethPair(host, UPLINK.device, internet, "up0");
      await host.ip("addr", "add", `${UPLINK.host}/${UPLINK.prefix}`, "dev", UPLINK.device);
      await host.ip("route", "add", "default", "via", UPLINK.internet);
      await internet.ip("addr", "add", `${UPLINK.internet}/${UPLINK.prefix}`, "dev", "up0");
      await internet.ip("addr", "add", `${FAR_ADDRESS}/32`, "dev", "lo");
      await internet.ip("addr", "add", `${METADATA_ADDRESS}/32`, "dev", "lo");
      await startProbeServer(internet, "internet", { tcp: [INTERNET_PORTS.tcp], udp: [INTERNET_PORTS.udp] });
      const ops = await HostNetworkInNamespace.start(host);
      return new NetworkLab(host, internet, ops);
    } catch (err) {
      await host.delete();
      await internet.delete();
      throw err;
    }
  }

  /**
   * A guest behind `attachment.hostDevice` (a veth, attached to `attachment.bridge` and up),
   * with the attachment's address, MAC and default route, answering TCP `ports` with `name`.
   */
  async addGuest(name: string, attachment: NetworkAttachment, ports: { tcp?: number[]; udp?: number[] } = { tcp: [80] }): Promise<NetNamespace> {
    const guest = await NetNamespace.create(name);
    this.#guests.push(guest);
    await vethPair(this.host, attachment.hostDevice, guest, "eth0", { bMac: attachment.mac });
    await this.host.ip("link", "set", attachment.hostDevice, "master", attachment.bridge);
    await guest.ip("addr", "add", `${attachment.address}/${attachment.prefixLength}`, "dev", "eth0");
    await guest.ip("route", "add", "default", "via", attachment.gateway);
    await startProbeServer(guest, name, ports);
    return guest;
  }

  async delete(): Promise<void> {
    this.ops.close();
    for (const ns of [...this.#guests, this.internet, this.host]) await ns.delete();
  }
}
