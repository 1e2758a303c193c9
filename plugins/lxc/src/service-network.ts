// One service's place on the managed bridge: its address claimed from the pool (in the
// ledger before it is taken), the bridge made ready before start, and both given back
// on destroy, along with a host-side veth that outlived the container.
import type { TargetContext } from "@vmctl/core/contract";
import { ledger } from "./layout.js";
import { attachmentFor, hostVethFor, type AddressPool, type BridgeAttachment, type BridgeTool } from "./network.js";

/** The managed bridge: its address pool, and iproute2 to make the bridge (absent: not available here). */
export interface ManagedNetwork {
  readonly pool: AddressPool;
  readonly bridge?: BridgeTool | undefined;
}

/** Makes the error for a bridge that cannot be used, reported on `spec.network`. */
export type NetworkError = (message: string, cause?: unknown) => Error;

export class ServiceNetwork {
  /** The address on the bridge, once claimed (or found in the pool after a restart). */
  #address: string | undefined;

  constructor(
    private readonly serviceId: string,
    /** The LXC container name: the ledger's key for the address. */
    private readonly name: string,
    private readonly ctx: TargetContext,
    private readonly network: ManagedNetwork | undefined,
    private readonly unavailable: NetworkError,
  ) {}

  /** Records the address in the ledger, claims it (intend → make), and records which one it is. */
  claim(): BridgeAttachment {
    const pool = this.network?.pool;
    if (pool === undefined) throw this.unavailable('network "bridge" is not available on this host');
    const res = this.ctx.resources;
    res.intend(ledger.address(this.name, pool.dir));
    let address: string;
    try {
      address = pool.claim(this.serviceId);
    } catch (err) {
      res.release("ip-address", this.name);
      throw err;
    }
    res.intend(ledger.address(this.name, pool.dir, address));
    this.#address = address;
    return attachmentFor(pool.net, this.serviceId, address);
  }

  /** The bridge exists and is up, and no veth a crash left behind holds this service's host-side name. */
  async ready(): Promise<void> {
    const bridge = this.network?.bridge;
    if (bridge === undefined) throw this.unavailable('network "bridge" is not available on this host: the ip tool (iproute2) was not found');
    try {
      await bridge.ensure();
      await bridge.remove(hostVethFor(this.serviceId));
    } catch (err) {
      throw this.unavailable((err as Error).message, err);
    }
  }

  /** `addresses` for a running service on the bridge. */
  addresses(): { addresses?: string[] } {
    this.#address ??= this.network?.pool.lookup(this.serviceId);
    return this.#address === undefined ? {} : { addresses: [this.#address] };
  }

  /** Gives the address back to the pool and removes a host-side veth that outlived the container. */
  async release(): Promise<void> {
    const bridge = this.network?.bridge;
    if (bridge) {
      const veth = hostVethFor(this.serviceId);
      await bridge.remove(veth).catch((err: unknown) => {
        this.ctx.log.warn("lxc: could not remove the host-side veth", { veth, error: String(err) });
      });
    }
    const pool = this.network?.pool;
    const address = this.#address ?? pool?.lookup(this.serviceId);
    if (pool && address !== undefined) pool.release(this.serviceId, address);
    this.#address = undefined;
    this.ctx.resources.release("ip-address", this.name);
  }
}
