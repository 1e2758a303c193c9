// kill -9 of vmctld while services with networks are being created, inside a network
// namespace this test makes: after a restart every acknowledged service keeps its address,
// no address is held twice, no TAP, bridge or rule is left that no service or network
// owns, and the addresses of the creates that were never acknowledged are free again.
import { join } from "node:path";
import test from "ava";
import Database from "better-sqlite3";
import { connect, type ServiceRecord } from "@vmctl/client";
import { NETTAP_FIXTURE, TestNetns } from "./helpers/netns.js";
import { Daemon, sandbox, teardown, until } from "./helpers/sandbox.js";

/** IPv4 addresses written in an nft ruleset (prefixes stripped). */
function addressesIn(text: string): Set<string> {
  return new Set([...text.matchAll(/\b(\d{1,3}(?:\.\d{1,3}){3})\b/g)].map((m) => m[1] as string));
}

test("kill -9 while services with networks are created: nothing leaked, no address given twice", async (t) => {
  t.timeout(240_000);
  const sb = sandbox("vmctl-network-crash-");
  const ns = TestNetns.create();
  const start = () => Daemon.start(sb, { plugins: [NETTAP_FIXTURE], extraArgs: ["--no-builtins"], wrap: (argv) => ns.wrap(argv) });
  let daemon: Daemon | undefined;
  try {
    daemon = await start();
    await daemon.client.createNetwork({ name: "web", subnet: "10.60.0.0/24" });
    const steady: ServiceRecord[] = [];
    for (let i = 0; i < 6; i++) {
      steady.push(await daemon.client.create({ name: `steady-${i}`, target: "nettap", spec: {}, network: i % 2 ? "web" : "default", start: true }));
    }

    const inflight = connect(sb.socket);
    const acknowledged: ServiceRecord[] = [];
    const pending = Array.from({ length: 30 }, (_, i) =>
      inflight
        .create({
          name: `inflight-${i}`,
          target: "nettap",
          // Long enough a prepare (after the TAP is made) that the kill finds most of them in it.
          spec: { delayMs: 100 + ((i * 37) % 400) },
          network: i % 3 === 0 ? "default" : "web",
          ports: i % 2 === 0 ? [{ hostPort: 20_000 + i, guestPort: 80, protocol: "tcp" }] : [],
          start: i % 2 === 0,
        })
        .then(
          (s) => void acknowledged.push(s),
          () => undefined,
        ),
    );
    await until("a few in-flight creates to be acknowledged", () => acknowledged.length >= 3, 60_000);
    await daemon.kill9();
    await Promise.all(pending);
    inflight.close();
    t.log(`acknowledged in flight before the kill: ${acknowledged.length} of 30`);
    t.true(acknowledged.length < 30, "the kill came after every create was done: it tested nothing");
    const tapsAtCrash = ns.links().filter((l) => l.ifname.startsWith("vmtap-")).length;
    const rulesAtCrash = ns.rulesetText();

    daemon = await start();
    const after = await daemon.client.list();
    const byId = new Map(after.map((s) => [s.id, s]));
    for (const s of [...steady, ...acknowledged]) {
      const now = byId.get(s.id);
      t.truthy(now, `acknowledged service ${s.name} is missing after the restart`);
      t.deepEqual(now?.network, s.network, `${s.name} kept its address, device and rules`);
    }
    t.log(`TAPs at the crash: ${tapsAtCrash}; services after the restart: ${after.length}; recovery: ${JSON.stringify(daemon.log().split("\n").filter((l) => l.includes("no service or network owns")))}`);
    t.true(tapsAtCrash > after.length, "no create was caught with its TAP made and not acknowledged");
    t.true(addressesIn(rulesAtCrash).size > 0);

    // No address twice on a network; every service with a network has one.
    const seen = new Map<string, string>();
    for (const s of after) {
      t.truthy(s.network, `${s.name} has no network`);
      const key = `${s.network?.network} ${s.network?.address}`;
      t.false(seen.has(key), `${key} is held by ${s.name} and ${seen.get(key)}`);
      seen.set(key, s.name);
    }

    // Exactly the TAPs of the listed services, each on its network's bridge; exactly the networks' bridges.
    const networks = await daemon.client.listNetworks();
    const bridgeOf = new Map(networks.map((n) => [n.name, n.bridge]));
    const links = ns.links();
    const taps = new Map(links.filter((l) => l.ifname.startsWith("vmtap-")).map((l) => [l.ifname, l.master]));
    t.deepEqual([...taps.keys()].sort(), after.map((s) => s.network?.hostDevice).sort(), "TAPs == the services' devices");
    for (const s of after) t.is(taps.get(s.network?.hostDevice ?? ""), bridgeOf.get(s.network?.network ?? ""), `${s.name}'s TAP is on its bridge`);
    t.deepEqual(links.filter((l) => l.ifname.startsWith("vmbr-")).map((l) => l.ifname).sort(), [...bridgeOf.values()].sort(), "bridges == the networks'");

    // Rules name no guest address but those of the listed services.
    const guests = new Set(after.map((s) => s.network?.address));
    const fixed = new Set(networks.flatMap((n) => [n.gateway, n.subnet.split("/")[0]]));
    for (const address of addressesIn(ns.rulesetText())) {
      if (!/^10\.(60|213)\./.test(address) || fixed.has(address)) continue;
      t.true(guests.has(address), `a rule names ${address}, which no service has`);
    }

    // New creates never get an address already held.
    const fresh = [];
    for (let i = 0; i < 4; i++) fresh.push(await daemon.client.create({ name: `fresh-${i}`, target: "nettap", spec: {}, network: i % 2 ? "web" : "default", start: true }));
    for (const s of fresh) t.false(seen.has(`${s.network?.network} ${s.network?.address}`), `${s.name} was given ${s.network?.address}, which is held`);

    // Everything removed leaves nothing of ours in the namespace.
    for (const s of await daemon.client.list()) await daemon.client.delete(s.id, { force: true });
    for (const n of await daemon.client.listNetworks()) await daemon.client.deleteNetwork(n.name);
    t.deepEqual(ns.links().filter((l) => /^vm(tap|br)-/.test(l.ifname)).map((l) => l.ifname), []);

    t.is(await daemon.stop(), 0);
    daemon = undefined;
    const db = new Database(join(sb.stateDir, "state.db"), { readonly: true });
    try {
      t.is(db.pragma("integrity_check", { simple: true }), "ok");
      t.deepEqual(db.pragma("foreign_key_check"), []);
      t.deepEqual(db.prepare("SELECT COUNT(*) AS n FROM network_leases").get(), { n: 0 });
    } finally {
      db.close();
    }
  } finally {
    await teardown(sb, [daemon]);
    ns.remove();
  }
});
