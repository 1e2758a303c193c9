// Network set-up for one microVM on the host, in a network namespace made for the run:
// ensureNetwork (warm: the network exists), createTap (a new persistent TAP on the
// bridge) and applyService (a new service: published port, egress policy, guard), timed
// inside the process doing it (createHostNetwork over @vmctl/native: netlink and
// libnftables in process, no child). Target: 5 ms.
// Peer, interleaved in the same run: the same TAP and the same nftables document done the
// usual way, by child processes (`ip tuntap add`, `ip link set … master … up`,
// `nft -j -f`), as shell-based network plugins do.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { document, EMPTY_STATE, serviceCommands } from "../ts/core/src/network/host-network-rules.js";
import { HostNetworkInNamespace } from "../ts/core/src/network/testing/host-network-in-namespace.js";
import { NetNamespace, systemTool } from "../ts/core/src/network/testing/netns.js";
import type { NetworkAttachment, NetworkDefinition, ServiceRules } from "../ts/core/src/network/types.js";
import { timeCommand } from "./lib/process.js";
import { median, report, reportError } from "./lib/report.js";

const RUNS = 31;
const NAME = "network-setup";

const network: NetworkDefinition = {
  name: "bench",
  subnet: "10.213.9.0/24",
  gateway: "10.213.9.1",
  bridge: "vmbr-bench",
  dns: ["10.213.9.1"],
  policy: { mode: "allow-all" },
};

function rulesFor(i: number, device: string): ServiceRules {
  const attachment: NetworkAttachment = {
    network: network.name,
    bridge: network.bridge,
    address: `10.213.9.${10 + i}`,
    prefixLength: 24,
    gateway: network.gateway,
    dns: network.dns,
    mac: `02:00:00:00:09:${(10 + i).toString(16).padStart(2, "0")}`,
    hostDevice: device,
    mtu: 1500,
  };
  return {
    serviceId: `bench-${i}`,
    attachment,
    ports: [{ hostPort: 18000 + i, guestPort: 80, protocol: "tcp" }],
    policy: { mode: "allow", cidrs: ["198.51.100.0/24"] },
  };
}

async function main(): Promise<void> {
  const ns = await NetNamespace.create("bench");
  const work = mkdtempSync(join(tmpdir(), "vmctl-bench-net-"));
  const ip = systemTool("ip", "iproute2");
  const nft = systemTool("nft", "nftables");
  try {
    const ops = await HostNetworkInNamespace.start(ns);
    await ops.ensureNetwork(network);
    const ours: number[] = [];
    const parts = { ensureNetwork: [] as number[], createTap: [] as number[], applyService: [] as number[] };
    const peer: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      // Ours: three calls, each timed inside the child (no IPC in the figure).
      const rules = rulesFor(i, `vmtap-b${i}`);
      await ops.ensureNetwork(network);
      parts.ensureNetwork.push(ops.lastCallMs);
      await ops.createTap(rules.attachment);
      parts.createTap.push(ops.lastCallMs);
      await ops.applyService(rules);
      parts.applyService.push(ops.lastCallMs);
      ours.push(parts.ensureNetwork[i]! + parts.createTap[i]! + parts.applyService[i]!);
      await ops.removeService(rules.serviceId);
      await ops.deleteDevice(rules.attachment.hostDevice);

      // The peer: the same TAP and the same rules by child processes.
      const peerRules = rulesFor(i, `vmtap-p${i}`);
      const file = join(work, `rules-${i}.json`);
      writeFileSync(file, document(serviceCommands(peerRules, EMPTY_STATE)));
      const exec = ["netns", "exec", ns.name];
      const device = peerRules.attachment.hostDevice;
      peer.push(
        (await timeCommand(ip, [...exec, ip, "tuntap", "add", "dev", device, "mode", "tap", "vnet_hdr"])) +
          (await timeCommand(ip, [...exec, ip, "link", "set", device, "master", network.bridge, "up"])) +
          (await timeCommand(ip, [...exec, nft, "-j", "-f", file])),
      );
      await ops.removeService(peerRules.serviceId);
      await ops.deleteDevice(device);
    }
    report({
      name: NAME,
      unit: "ms",
      value: median(ours),
      baseline: median(peer),
      baselineName: "ip tuntap add + ip link set master up + nft -j -f (child processes)",
      runs: RUNS,
      target: "<= 5 ms",
      conditions: {
        ensureNetworkMs: Math.round(median(parts.ensureNetwork) * 1000) / 1000,
        createTapMs: Math.round(median(parts.createTap) * 1000) / 1000,
        applyServiceMs: Math.round(median(parts.applyService) * 1000) / 1000,
        timedIn: "the process doing it (no IPC)",
        namespace: "a fresh network namespace",
      },
    });
    await ops.removeNetwork(network);
  } catch (err) {
    reportError(NAME, (err as Error).message);
  } finally {
    rmSync(work, { recursive: true, force: true });
    await ns.delete();
  }
}

await main();
