// With Docker on the host: its iptables(-nft) filter table, FORWARD policy drop, jumping to
// DOCKER-USER first — made in the lab's host namespace exactly as Docker makes it, with
// nft. Our networks still carry egress and published ports, our rules sit in DOCKER-USER
// only while the network exists, and Docker's own rule is left alone.
import { writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { allowBridgeCommands, readDockerUser, removeBridgeCommands } from "./docker-user.js";
import { INTERNET_PORTS, NetworkLab, UPLINK } from "./testing/network-lab.js";
import { systemTool } from "./testing/netns.js";
import { probe } from "./testing/probes.js";
import type { NetworkAttachment, NetworkDefinition } from "./types.js";

const network: NetworkDefinition = { name: "dk", subnet: "10.213.9.0/24", gateway: "10.213.9.1", bridge: "vmbr-dk", dns: [], policy: { mode: "allow-all" } };
const attachment: NetworkAttachment = {
  network: network.name,
  bridge: network.bridge,
  address: "10.213.9.5",
  prefixLength: 24,
  gateway: network.gateway,
  dns: [],
  mac: "02:00:00:00:09:05",
  hostDevice: "vmtap-dk",
  mtu: 1500,
};

/** Docker's filter table as `iptables-nft` leaves it after dockerd starts (its own bridge's rules left out). */
const DOCKER_RULESET = `
table ip filter {
  chain DOCKER-USER {
    counter return
  }
  chain FORWARD {
    type filter hook forward priority filter; policy drop;
    counter jump DOCKER-USER
  }
}
`;

const nft = systemTool("nft", "nftables");

async function dockerChain(lab: NetworkLab): Promise<{ ours: string[]; others: number }> {
  const listed = JSON.parse(await lab.host.exec(nft, ["-j", "list", "chain", "ip", "filter", "DOCKER-USER"])) as { nftables: { rule?: { comment?: string } }[] };
  const rules = listed.nftables.flatMap((i) => (i.rule ? [i.rule] : []));
  return { ours: rules.flatMap((r) => (r.comment ? [r.comment] : [])), others: rules.filter((r) => r.comment === undefined).length };
}

test("the commands: two rules per bridge at the top, none twice, removed by handle; others' rules never read as ours", (t) => {
  const add = allowBridgeCommands("vmbr-a", []);
  t.is(add.length, 2);
  t.deepEqual(allowBridgeCommands("vmbr-a", [{ handle: 4, bridge: "vmbr-a" }]), []);
  const listing = JSON.stringify({
    nftables: [
      { metainfo: {} },
      { rule: { handle: 2, comment: "vmctl vmbr-a" } },
      { rule: { handle: 3, comment: "someone else's" } },
      { rule: { handle: 5 } },
      { rule: { handle: 6, comment: "vmctl vmbr-b" } },
    ],
  });
  const ours = readDockerUser(listing);
  t.deepEqual(ours, [
    { handle: 2, bridge: "vmbr-a" },
    { handle: 6, bridge: "vmbr-b" },
  ]);
  t.deepEqual(removeBridgeCommands("vmbr-a", ours), [{ delete: { rule: { family: "ip", table: "filter", chain: "DOCKER-USER", handle: 2 } } }]);
});

test.serial("under Docker's FORWARD policy a guest still gets out and its published port answers; the rules go with the network", async (t) => {
  t.timeout(120_000);
  const lab = await NetworkLab.create("dk");
  const dir = mkdtempSync(join(tmpdir(), "vmctl-docker-ruleset-"));
  try {
    const ruleset = join(dir, "docker.nft");
    writeFileSync(ruleset, DOCKER_RULESET);
    await lab.host.exec(nft, ["-f", ruleset]);
    await lab.ops.ensureNetwork(network);
    const guest = await lab.addGuest("web", attachment, { tcp: [80] });
    await lab.ops.applyService({ serviceId: "svc-dk", attachment, ports: [{ hostPort: 8080, guestPort: 80, protocol: "tcp" }], policy: { mode: "allow-all" } });
    t.deepEqual(await dockerChain(lab), { ours: ["vmctl vmbr-dk", "vmctl vmbr-dk"], others: 1 });

    const out = await probe(guest, "tcp", UPLINK.internet, INTERNET_PORTS.tcp);
    t.true(out.ok, `egress through Docker's FORWARD: ${out.error ?? ""}`);
    const published = await probe(lab.internet, "tcp", UPLINK.host, 8080);
    t.true(published.ok, `the published port from outside: ${published.error ?? ""}`);
    t.regex(published.reply ?? "", /^web /);

    // Our policy still decides: deny-all stops egress even though Docker's chain now accepts the bridge.
    await lab.ops.applyService({ serviceId: "svc-dk", attachment, ports: [], policy: { mode: "deny-all" } });
    t.false((await probe(guest, "tcp", UPLINK.internet, INTERNET_PORTS.tcp, { timeoutMs: 1000 })).ok, "deny-all still holds");

    await lab.ops.removeService("svc-dk");
    await lab.ops.removeNetwork(network);
    t.deepEqual(await dockerChain(lab), { ours: [], others: 1 }, "our rules went with the network; Docker's stayed");
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await lab.delete();
  }
});

test.serial("Docker started after the network: the next service's rules let it past too", async (t) => {
  t.timeout(120_000);
  const lab = await NetworkLab.create("dl");
  const dir = mkdtempSync(join(tmpdir(), "vmctl-docker-ruleset-"));
  try {
    await lab.ops.ensureNetwork(network);
    const ruleset = join(dir, "docker.nft");
    writeFileSync(ruleset, DOCKER_RULESET);
    await lab.host.exec(nft, ["-f", ruleset]);
    const guest = await lab.addGuest("web", attachment, { tcp: [80] });
    await lab.ops.applyService({ serviceId: "svc-dl", attachment, ports: [], policy: { mode: "allow-all" } });
    const out = await probe(guest, "tcp", UPLINK.internet, INTERNET_PORTS.tcp);
    t.true(out.ok, `egress: ${out.error ?? ""}`);
    t.true((await lab.ops.inventory()).bridges.includes(network.bridge));
    await lab.ops.removeService("svc-dl");
    await lab.ops.removeNetwork(network);
    t.deepEqual(await dockerChain(lab), { ours: [], others: 1 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await lab.delete();
  }
});
