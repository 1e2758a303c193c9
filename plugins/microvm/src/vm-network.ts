// A service's network as its VM has it: the NIC (virtio-net "eth0" on the host's TAP,
// with the leased MAC) and the guest's settings, handed to the guest on the kernel
// command line as `vmctl.net=ADDR/PREFIX,GATEWAY,MTU` and `vmctl.dns=IP,...`. Dotted
// words: Linux keeps them out of init's arguments (it hands init only words with neither
// `=` nor `.`), so the guest agent reads them from /proc/cmdline (crates/guest-agent,
// net.rs); a kernel-only VM's own init can do the same. The TAP is made by the
// orchestrator's host side (ctx.network.createTap), recorded in the ledger first.
import { VmctlError, type NetworkAttachment, type TargetContext } from "@vmctl/core/contract";
import { errorDetails } from "./errors.js";
import { ledger, TAP_KIND } from "./layout.js";

/** The NIC's id in the VMM (the guest's first and only virtio-net device: eth0). */
export const NIC_ID = "eth0";

/** What vm.json keeps of the attachment: the VM boots on what was prepared. */
export type VmNetwork = {
  /** The host's TAP (attachment.hostDevice): the VMM opens it by name. */
  hostDevice: string;
  mac: string;
  address: string;
  prefixLength: number;
  gateway: string;
  dns: string[];
  mtu: number;
};

export function vmNetworkOf(attachment: NetworkAttachment): VmNetwork {
  const { hostDevice, mac, address, prefixLength, gateway, dns, mtu } = attachment;
  return { hostDevice, mac, address, prefixLength, gateway, dns: [...dns], mtu };
}

/** The kernel command-line words that carry `network` to the guest. */
export function networkBootWords(network: VmNetwork): string[] {
  const net = `vmctl.net=${network.address}/${network.prefixLength},${network.gateway},${network.mtu}`;
  return network.dns.length === 0 ? [net] : [net, `vmctl.dns=${network.dns.join(",")}`];
}

/** `vmctl.` words on a command line: ours replace any the spec's bootArgs carried. */
export function isNetworkBootWord(word: string): boolean {
  return word.startsWith("vmctl.net=") || word.startsWith("vmctl.dns=");
}

/**
 * The service's TAP, in the ledger before it is made (a crash in between still finds
 * it); made again if it vanished (idempotent). vm.json's network must be the one the
 * orchestrator hands now: the lease outlives restarts, so a mismatch is a bug, said so.
 */
export async function ensureTap(ctx: TargetContext, serviceId: string, network: VmNetwork): Promise<void> {
  const given = ctx.network;
  if (given === undefined) {
    throw new VmctlError("FAILED_PRECONDITION", `network: the VM was prepared on a network, and the orchestrator gives it none now (its lease is gone)`, { details: errorDetails(serviceId) });
  }
  if (given.attachment.hostDevice !== network.hostDevice || given.attachment.address !== network.address) {
    throw new VmctlError(
      "INTERNAL",
      `network: the VM was prepared with ${network.address} on ${network.hostDevice}, the orchestrator now gives ${given.attachment.address} on ${given.attachment.hostDevice}`,
      { details: errorDetails(serviceId) },
    );
  }
  ctx.resources.intend(ledger.tap(network.hostDevice));
  await given.createTap();
}

/**
 * destroy(): the TAP deleted (the engine deletes it again after destroy, harmlessly) and
 * released. A ledger without one has nothing to do.
 */
export async function removeTap(ctx: TargetContext): Promise<void> {
  const taps = ctx.resources.list().filter((r) => r.kind === TAP_KIND);
  if (taps.length === 0) return;
  await ctx.network?.deleteDevice();
  for (const tap of taps) ctx.resources.release(tap.kind, tap.key);
}
