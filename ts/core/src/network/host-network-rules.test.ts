// The rule builder on its own: what a listing says is there, and which commands follow.
// That the rules do what they say is host-network.test.ts's job (real traffic).
import test from "ava";
import {
  addressOwner,
  emptyState,
  networkBridgesOf,
  networkCommands,
  publishedBy,
  readListing,
  removeNetworkCommands,
  removeServiceCommands,
  serviceCommands,
  servicesOf,
  skeletonSignature,
  EMPTY_STATE,
} from "./host-network-rules.js";
import type { NetworkDefinition, ServiceRules } from "./types.js";

const network: NetworkDefinition = { name: "n", subnet: "10.1.2.0/24", gateway: "10.1.2.1", bridge: "vmbr-n", dns: ["10.1.2.1"], policy: { mode: "allow-all" } };
const rules: ServiceRules = {
  serviceId: "s1",
  attachment: { network: "n", bridge: "vmbr-n", address: "10.1.2.5", prefixLength: 24, gateway: "10.1.2.1", dns: [], mac: "02:00:00:00:00:05", hostDevice: "vmtap-s1", mtu: 1500 },
  ports: [
    { hostPort: 8080, guestPort: 80, protocol: "tcp" },
    { hostPort: 5353, guestPort: 53, protocol: "udp", hostAddress: "127.0.0.1" },
  ],
  policy: { mode: "allow", cidrs: ["192.0.2.0/24", "198.51.100.7/32"] },
};

/** A listing shaped as `nft -j list table inet vmctl` prints it (1.0.6). */
const listing = JSON.stringify({
  nftables: [
    { metainfo: { version: "1.0.6", json_schema_version: 1 } },
    { table: { family: "inet", name: "vmctl", handle: 1 } },
    { set: { family: "inet", name: "bridges", table: "vmctl", type: "ifname", handle: 2, elem: ["vmbr-n"] } },
    { set: { family: "inet", name: "bridge_self", table: "vmctl", type: ["ifname", "ifname"], handle: 3, elem: [{ concat: ["vmbr-n", "vmbr-n"] }] } },
    { map: { family: "inet", name: "svc_egress", table: "vmctl", type: "ipv4_addr", map: "verdict", handle: 4, elem: [["10.1.2.5", { jump: { target: "svc-s1-egress" } }]] } },
    { map: { family: "inet", name: "ports", table: "vmctl", type: ["inet_proto", "inet_service"], map: "verdict", handle: 5, elem: [[{ concat: ["tcp", 8080] }, { jump: { target: "svc-s1-dnat" } }]] } },
    {
      map: {
        family: "inet",
        name: "ports_addr",
        table: "vmctl",
        type: ["ipv4_addr", "inet_proto", "inet_service"],
        map: "verdict",
        handle: 6,
        elem: [[{ concat: ["127.0.0.1", "udp", 5353] }, { jump: { target: "svc-s1-dnat" } }]],
      },
    },
    { map: { family: "inet", name: "net_nat", table: "vmctl", type: "ipv4_addr", map: "verdict", flags: ["interval"], handle: 7, elem: [[{ prefix: { addr: "10.1.2.0", len: 24 } }, { jump: { target: "net-vmbr-n-nat" } }]] } },
    { chain: { family: "inet", table: "vmctl", name: "forward", handle: 8, type: "filter", hook: "forward", prio: 0, policy: "accept" } },
    { chain: { family: "inet", table: "vmctl", name: "net-vmbr-n-nat", handle: 9 } },
    { chain: { family: "inet", table: "vmctl", name: "net-vmbr-n-input", handle: 10 } },
    { chain: { family: "inet", table: "vmctl", name: "svc-s1-dnat", handle: 11 } },
    { chain: { family: "inet", table: "vmctl", name: "svc-s1-egress", handle: 12 } },
    { rule: { family: "inet", table: "vmctl", chain: "forward", handle: 13, expr: [{ accept: null }] } },
    // Someone else's table in the same listing is not ours.
    { chain: { family: "inet", table: "other", name: "svc-x-dnat", handle: 1 } },
  ],
});

function state() {
  const s = emptyState();
  readListing(listing, s);
  readListing(JSON.stringify({ nftables: [{ chain: { family: "bridge", table: "vmctl", name: "svc-s1-guard", handle: 3 } }] }), s);
  return s;
}

test("a listing tells our services, networks, published ports and address owners", (t) => {
  const s = state();
  t.deepEqual(servicesOf(s), ["s1"]);
  t.deepEqual(networkBridgesOf(s), ["vmbr-n"]);
  t.deepEqual(publishedBy(s, "tcp", 8080), [{ address: "", serviceId: "s1" }]);
  t.deepEqual(publishedBy(s, "udp", 5353), [{ address: "127.0.0.1", serviceId: "s1" }]);
  t.deepEqual(publishedBy(s, "udp", 8080), []);
  t.is(addressOwner(s, "10.1.2.5"), "s1");
  t.is(addressOwner(s, "10.1.2.6"), undefined);
  t.false(s.chains.inet.has("svc-x-dnat"), "another table's chain is not ours");
});

test("a new service's chains are made; an existing one's are emptied and refilled, its old elements swapped", (t) => {
  const fresh = JSON.stringify(serviceCommands(rules, EMPTY_STATE));
  t.regex(fresh, /"add":\{"chain":\{"family":"inet","table":"vmctl","name":"svc-s1-dnat"\}\}/);
  t.notRegex(fresh, /"flush"|"delete"/);
  const again = serviceCommands(rules, state());
  const text = JSON.stringify(again);
  t.regex(text, /"flush":\{"chain":\{"family":"inet","table":"vmctl","name":"svc-s1-dnat"\}\}/);
  t.notRegex(text, /"add":\{"chain"/);
  // Old elements deleted before the new ones are added, in the same transaction.
  const firstAdd = again.findIndex((c) => JSON.stringify(c).includes('"add":{"element"'));
  const lastDelete = again.map((c) => JSON.stringify(c).includes('"delete":{"element"')).lastIndexOf(true);
  t.true(lastDelete >= 0 && lastDelete < firstAdd);
  t.regex(text, /"dnat":\{"family":"ip","addr":"10.1.2.5","port":80\}/);
  t.regex(text, /"set":\[\{"prefix":\{"addr":"192.0.2.0","len":24\}\},"198.51.100.7"\]/);
});

test("removing a service takes its elements and chains, and nothing when it has none", (t) => {
  t.deepEqual(removeServiceCommands("s1", EMPTY_STATE), []);
  t.deepEqual(removeServiceCommands("other", state()), []);
  const text = JSON.stringify(removeServiceCommands("s1", state()));
  for (const chain of ["svc-s1-dnat", "svc-s1-egress", "svc-s1-guard"]) t.true(text.includes(`"delete":{"chain":{"family":"${chain.endsWith("guard") ? "bridge" : "inet"}","table":"vmctl","name":"${chain}"}}`), chain);
  t.true(text.indexOf('"element"') < text.indexOf('"chain"'), "elements go before the chains they jump to");
});

test("the last network removed with no service left takes our tables; otherwise only its own", (t) => {
  const withService = JSON.stringify(removeNetworkCommands("vmbr-n", state()));
  t.notRegex(withService, /"table":\{"family"/, "a service is left: tables stay");
  t.regex(withService, /"delete":\{"chain":\{"family":"inet","table":"vmctl","name":"net-vmbr-n-nat"\}\}/);
  const s = state();
  for (const c of ["svc-s1-dnat", "svc-s1-egress"]) s.chains.inet.delete(c);
  s.chains.bridge.delete("svc-s1-guard");
  t.deepEqual(removeNetworkCommands("vmbr-n", s), [{ delete: { table: { family: "inet", name: "vmctl" } } }]);
  t.deepEqual(removeNetworkCommands("vmbr-n", EMPTY_STATE), []);
});

test("the fixed chains are left out when intact; the metadata refusal comes before any policy", (t) => {
  const full = JSON.stringify(networkCommands(network, EMPTY_STATE));
  const lean = JSON.stringify(networkCommands(network, state(), { skeletonIntact: true }));
  t.regex(full, /"chain":"guest-egress"/);
  t.notRegex(lean, /"guest-egress"|"forward"/);
  const egress = full.slice(full.indexOf('"chain":"guest-egress"'));
  t.true(egress.indexOf("169.254.169.254") < egress.indexOf("@svc_egress"));
  // The signature changes with a chain's rules.
  const s = state();
  const before = skeletonSignature(s);
  readListing(JSON.stringify({ nftables: [{ rule: { family: "inet", table: "vmctl", chain: "forward", handle: 99, expr: [{ drop: null }] } }] }), s);
  t.not(skeletonSignature(s), before);
});
