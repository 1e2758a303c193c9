// The host side for real, inside namespaces this test makes (never the runner's own): a
// host namespace running createHostNetwork(), an "internet" behind its uplink, and guests
// on the bridge (veths in place of TAPs). Checked by traffic, and by `ip -j` / `nft -j`.
import test from "ava";
import { VmctlError } from "../errors.js";
import { INTERNET_PORTS, FAR_ADDRESS, METADATA_ADDRESS, NetworkLab, UPLINK } from "./testing/network-lab.js";
import { systemTool, type NetNamespace } from "./testing/netns.js";
import { probe, startProbeServer } from "./testing/probes.js";
import type { NetworkAttachment, NetworkDefinition, ServiceRules } from "./types.js";

const network: NetworkDefinition = {
  name: "default",
  subnet: "10.213.7.0/24",
  gateway: "10.213.7.1",
  bridge: "vmbr-t0",
  dns: ["10.213.7.1"],
  policy: { mode: "allow-all" },
};

const attachment = (n: number, device: string): NetworkAttachment => ({
  network: network.name,
  bridge: network.bridge,
  address: `10.213.7.${n}`,
  prefixLength: 24,
  gateway: network.gateway,
  dns: network.dns,
  mac: `02:00:00:00:07:${n.toString(16).padStart(2, "0")}`,
  hostDevice: device,
  mtu: 1500,
});

const web = attachment(5, "vmtap-web");
const webRules = (policy: ServiceRules["policy"]): ServiceRules => ({
  serviceId: "svc-web",
  attachment: web,
  ports: [
    { hostPort: 8080, guestPort: 80, protocol: "tcp" },
    { hostPort: 8081, guestPort: 80, protocol: "tcp", hostAddress: "127.0.0.1" },
    { hostPort: 15353, guestPort: 5353, protocol: "udp" },
  ],
  policy,
});

let lab: NetworkLab;
let guest: NetNamespace;

test.before(async () => {
  lab = await NetworkLab.create("hn");
  await lab.ops.ensureNetwork(network);
  guest = await lab.addGuest("web", web, { tcp: [80], udp: [5353] });
  await lab.ops.applyService(webRules({ mode: "allow-all" }));
});

test.after.always(async () => {
  await lab?.delete();
});

const reaches = async (t: { true: (v: boolean, m?: string) => void }, from: NetNamespace, proto: "tcp" | "udp", host: string, port: number, expectReply?: RegExp) => {
  const r = await probe(from, proto, host, port);
  t.true(r.ok, `${proto} ${host}:${port} from ${from.name} should answer: ${r.error ?? ""}`);
  if (expectReply !== undefined) t.true(expectReply.test(r.reply ?? ""), `reply ${JSON.stringify(r.reply)} should match ${expectReply}`);
};
const blocked = async (t: { false: (v: boolean, m?: string) => void }, from: NetNamespace, proto: "tcp" | "udp", host: string, port: number, options: { localAddress?: string } = {}) => {
  const r = await probe(from, proto, host, port, { timeoutMs: 1000, ...options });
  t.false(r.ok, `${proto} ${host}:${port} from ${from.name} should not answer, got ${JSON.stringify(r.reply)}`);
};

test.serial("egress is NATed to the uplink: the internet sees the host's address, over TCP and UDP (DNS)", async (t) => {
  await reaches(t, guest, "tcp", UPLINK.internet, INTERNET_PORTS.tcp, new RegExp(`^internet ${UPLINK.host.replaceAll(".", "\\.")}$`));
  await reaches(t, guest, "udp", UPLINK.internet, INTERNET_PORTS.udp, new RegExp(`^internet ${UPLINK.host.replaceAll(".", "\\.")}$`));
  await reaches(t, guest, "tcp", FAR_ADDRESS, INTERNET_PORTS.tcp, /^internet /);
});

test.serial("a published port answers from the host itself (127.0.0.1 included) and from outside", async (t) => {
  await reaches(t, lab.host, "tcp", "127.0.0.1", 8080, /^web /);
  await reaches(t, lab.host, "tcp", UPLINK.host, 8080, /^web /);
  // From outside the guest sees the real client.
  await reaches(t, lab.internet, "tcp", UPLINK.host, 8080, new RegExp(`^web ${UPLINK.internet.replaceAll(".", "\\.")}$`));
  // A port published on 127.0.0.1 only: the host reaches it there, the outside does not.
  await reaches(t, lab.host, "tcp", "127.0.0.1", 8081, /^web /);
  await blocked(t, lab.internet, "tcp", UPLINK.host, 8081);
  // UDP too.
  await reaches(t, lab.internet, "udp", UPLINK.host, 15353, new RegExp(`^web ${UPLINK.internet.replaceAll(".", "\\.")}$`));
  await reaches(t, lab.host, "udp", "127.0.0.1", 15353, /^web /);
});

test.serial("the cloud metadata address is refused, even when a policy allows its range", async (t) => {
  await blocked(t, guest, "tcp", METADATA_ADDRESS, INTERNET_PORTS.tcp);
  await lab.ops.applyService(webRules({ mode: "allow", cidrs: ["169.254.0.0/16"] }));
  await blocked(t, guest, "tcp", METADATA_ADDRESS, INTERNET_PORTS.tcp);
  // The internet namespace does answer there: the refusal is the host's.
  await reaches(t, lab.internet, "tcp", METADATA_ADDRESS, INTERNET_PORTS.tcp, /^internet /);
});

test.serial("ensureNetwork puts back our fixed rules when something else changed them", async (t) => {
  await lab.host.exec(systemTool("nft", "nftables"), ["flush", "chain", "inet", "vmctl", "forward"]);
  await reaches(t, guest, "tcp", METADATA_ADDRESS, INTERNET_PORTS.tcp); // unguarded meanwhile
  await lab.ops.ensureNetwork(network);
  await blocked(t, guest, "tcp", METADATA_ADDRESS, INTERNET_PORTS.tcp);
});

test.serial("deny-all stops egress while the published port still answers", async (t) => {
  await lab.ops.applyService(webRules({ mode: "deny-all" }));
  await blocked(t, guest, "tcp", UPLINK.internet, INTERNET_PORTS.tcp);
  await blocked(t, guest, "udp", UPLINK.internet, INTERNET_PORTS.udp);
  await reaches(t, lab.internet, "tcp", UPLINK.host, 8080, /^web /);
  await reaches(t, lab.host, "tcp", "127.0.0.1", 8080, /^web /);
});

test.serial("allow-CIDRs allows only those destinations", async (t) => {
  await lab.ops.applyService(webRules({ mode: "allow", cidrs: ["198.51.100.0/24"] }));
  await reaches(t, guest, "tcp", FAR_ADDRESS, INTERNET_PORTS.tcp, /^internet /);
  await blocked(t, guest, "tcp", UPLINK.internet, INTERNET_PORTS.tcp);
  await lab.ops.applyService(webRules({ mode: "allow", cidrs: [`${UPLINK.internet}`] }));
  await reaches(t, guest, "tcp", UPLINK.internet, INTERNET_PORTS.tcp, /^internet /);
  await blocked(t, guest, "tcp", FAR_ADDRESS, INTERNET_PORTS.tcp);
});

test.serial("on the host a guest reaches DNS on its gateway and nothing else", async (t) => {
  await lab.ops.applyService(webRules({ mode: "allow-all" }));
  await startProbeServer(lab.host, "host", { tcp: [2222], udp: [53] });
  await reaches(t, guest, "udp", network.gateway, 53, /^host /);
  await reaches(t, lab.host, "tcp", network.gateway, 2222, /^host /); // it does answer, for the host
  await blocked(t, guest, "tcp", network.gateway, 2222);
  await blocked(t, guest, "tcp", UPLINK.host, 2222);
  await blocked(t, guest, "tcp", "127.0.0.1", 2222);
});

test.serial("a guest that takes another source address gets nowhere (held to its own on the bridge)", async (t) => {
  await guest.ip("addr", "add", "10.213.7.77/24", "dev", "eth0");
  try {
    await reaches(t, guest, "tcp", UPLINK.internet, INTERNET_PORTS.tcp);
    await blocked(t, guest, "tcp", UPLINK.internet, INTERNET_PORTS.tcp, { localAddress: "10.213.7.77" });
  } finally {
    await guest.ip("addr", "del", "10.213.7.77/24", "dev", "eth0");
  }
});

test.serial("a second service on the network has its own rules; replacing one leaves the other's alone", async (t) => {
  const db = attachment(6, "vmtap-db");
  const dbGuest = await lab.addGuest("db", db, { tcp: [5432] });
  await lab.ops.applyService({ serviceId: "svc-db", attachment: db, ports: [{ hostPort: 15432, guestPort: 5432, protocol: "tcp" }], policy: { mode: "deny-all" } });
  await reaches(t, lab.internet, "tcp", UPLINK.host, 15432, /^db /);
  await blocked(t, dbGuest, "tcp", UPLINK.internet, INTERNET_PORTS.tcp);
  // Guests of one network reach each other directly.
  await reaches(t, dbGuest, "tcp", web.address, 80, /^web /);
  // web's rules replaced: db's still in force.
  await lab.ops.applyService(webRules({ mode: "allow-all" }));
  await reaches(t, lab.internet, "tcp", UPLINK.host, 15432, /^db /);
  await blocked(t, dbGuest, "tcp", UPLINK.internet, INTERNET_PORTS.tcp);
  await lab.ops.removeService("svc-db");
  await blocked(t, lab.internet, "tcp", UPLINK.host, 15432);
  // With no rules left, db's address is dropped (fail closed), web unaffected.
  await blocked(t, dbGuest, "tcp", UPLINK.internet, INTERNET_PORTS.tcp);
  await reaches(t, guest, "tcp", UPLINK.internet, INTERNET_PORTS.tcp);
  t.true(await lab.ops.deleteDevice("vmtap-db"));
});

test.serial("a port published by another service, or listened on by the host, is refused naming ports[i].hostPort", async (t) => {
  const other: ServiceRules = {
    serviceId: "svc-other",
    attachment: attachment(9, "vmtap-other"),
    ports: [
      { hostPort: 9999, guestPort: 80, protocol: "udp" },
      { hostPort: 8080, guestPort: 80, protocol: "tcp" },
    ],
    policy: { mode: "allow-all" },
  };
  const taken = await t.throwsAsync(lab.ops.applyService(other), { instanceOf: VmctlError });
  t.is(taken?.code, "ALREADY_EXISTS");
  t.is(taken?.details.field, "ports[1].hostPort");
  t.regex(taken?.message ?? "", /tcp port 8080 is already published by service svc-web/);
  // 8081 is web's on 127.0.0.1 only; another service may not take it for every address.
  const overlapping = await t.throwsAsync(lab.ops.applyService({ ...other, ports: [{ hostPort: 8081, guestPort: 80, protocol: "tcp" }] }), { instanceOf: VmctlError });
  t.is(overlapping?.code, "ALREADY_EXISTS");
  const listened = await t.throwsAsync(lab.ops.applyService({ ...other, ports: [{ hostPort: 2222, guestPort: 80, protocol: "tcp" }] }), { instanceOf: VmctlError });
  t.is(listened?.code, "FAILED_PRECONDITION");
  t.is(listened?.details.field, "ports[0].hostPort");
  t.regex(listened?.message ?? "", /tcp port 2222 is in use on the host/);
  t.deepEqual((await lab.ops.inventory()).services, ["svc-web"], "nothing of a refused service is left");
});

test.serial("bad input is INVALID_ARGUMENT naming the field, and changes nothing", async (t) => {
  const before = await lab.host.nftRuleset();
  const cases: [ServiceRules, string][] = [
    [webRules({ mode: "allow", cidrs: ["10.0.0.1/8"] }), "policy.cidrs[0]"],
    [webRules({ mode: "allow", cidrs: ["198.51.100.0/24", "1.2.3.4/33"] }), "policy.cidrs[1]"],
    [{ ...webRules({ mode: "allow-all" }), serviceId: "../etc" }, "serviceId"],
    [{ ...webRules({ mode: "allow-all" }), ports: [{ hostPort: 0, guestPort: 80, protocol: "tcp" }] }, "ports[0].hostPort"],
    [{ ...webRules({ mode: "allow-all" }), ports: [{ hostPort: 80, guestPort: 80, protocol: "sctp" as "tcp" }] }, "ports[0].protocol"],
    [{ ...webRules({ mode: "allow-all" }), attachment: { ...web, mac: "02:00:00:00:07" } }, "attachment.mac"],
    [{ ...webRules({ mode: "allow-all" }), attachment: { ...web, address: "10.213.7.5; drop" } }, "attachment.address"],
  ];
  for (const [rules, field] of cases) {
    const err = await t.throwsAsync(lab.ops.applyService(rules), { instanceOf: VmctlError }, field);
    t.is(err?.code, "INVALID_ARGUMENT", field);
    t.is(err?.details.field, field);
  }
  const unset = await t.throwsAsync(lab.ops.applyService({ ...webRules({ mode: "allow-all" }), attachment: { ...web, bridge: "vmbr-none" } }), { instanceOf: VmctlError });
  t.is(unset?.code, "FAILED_PRECONDITION");
  t.is(unset?.details.field, "attachment.bridge");
  const bad = await t.throwsAsync(lab.ops.ensureNetwork({ ...network, gateway: "10.213.8.1" }), { instanceOf: VmctlError });
  t.is(bad?.details.field, "network.gateway");
  const badBridge = await t.throwsAsync(lab.ops.ensureNetwork({ ...network, bridge: "a-bridge-name-too-long" }), { instanceOf: VmctlError });
  t.is(badBridge?.details.field, "network.bridge");
  t.deepEqual(await lab.host.nftRuleset(), before);
});

test.serial("a network whose subnet overlaps one of ours is refused, and its new bridge does not stay", async (t) => {
  const before = await lab.host.nftRuleset();
  const err = await t.throwsAsync(lab.ops.ensureNetwork({ ...network, name: "other", bridge: "vmbr-t1", subnet: "10.213.7.128/25", gateway: "10.213.7.129", dns: [] }), {
    instanceOf: VmctlError,
  });
  t.not(err?.code, "INTERNAL", err?.message);
  t.false((await lab.host.ipJson<{ ifname: string }[]>("link")).some((l) => l.ifname === "vmbr-t1"));
  t.deepEqual(await lab.host.nftRuleset(), before);
});

test.serial("createTap makes a persistent vnet-hdr TAP on the bridge, up; inventory and hostSubnets see ours apart", async (t) => {
  const vm = attachment(20, "vmtap-vm");
  await lab.ops.createTap(vm);
  await lab.ops.createTap(vm); // idempotent
  const [link] = await lab.host.ipJson<{ master?: string; mtu: number; flags: string[]; linkinfo: { info_kind: string; info_data: Record<string, unknown> } }[]>(
    "-d",
    "link",
    "show",
    "dev",
    "vmtap-vm",
  );
  t.is(link?.linkinfo.info_kind, "tun");
  t.is(link?.linkinfo.info_data.type, "tap");
  t.is(link?.linkinfo.info_data.vnet_hdr, true);
  t.is(link?.linkinfo.info_data.pi, false);
  t.is(link?.master, network.bridge);
  t.true(link?.flags.includes("UP"));
  const inventory = await lab.ops.inventory();
  t.deepEqual(inventory.bridges, [network.bridge]);
  t.deepEqual(inventory.services, ["svc-web"]);
  // The veth of "web" is named as ours too: the orchestrator names both kinds of host device.
  t.deepEqual(inventory.devices, ["vmtap-vm", "vmtap-web"]);
  const subnets = await lab.ops.hostSubnets();
  t.true(subnets.includes("203.0.113.0/24"), JSON.stringify(subnets));
  t.false(subnets.includes(network.subnet), "our own network is not the host's");
  t.false(subnets.includes("0.0.0.0/0"));
  const err = await t.throwsAsync(lab.ops.createTap({ ...vm, hostDevice: "vmtap-x", bridge: "vmbr-none" }), { instanceOf: VmctlError });
  t.is(err?.code, "NOT_FOUND");
  t.false((await lab.host.ipJson<{ ifname: string }[]>("link")).some((l) => l.ifname === "vmtap-x"), "a TAP whose attach failed is not left");
  t.true(await lab.ops.deleteDevice("vmtap-vm"));
  t.false(await lab.ops.deleteDevice("vmtap-vm"));
});

test.serial("two networks: guests of one reach the other's only through published ports; removing one leaves the other whole", async (t) => {
  const second: NetworkDefinition = { ...network, name: "second", subnet: "10.213.8.0/24", gateway: "10.213.8.1", bridge: "vmbr-t2", dns: ["192.0.2.53"] };
  await lab.ops.ensureNetwork(second);
  const b: NetworkAttachment = { ...attachment(5, "vmtap-b"), network: "second", bridge: second.bridge, address: "10.213.8.5", gateway: second.gateway, dns: second.dns };
  const bGuest = await lab.addGuest("b", b);
  await lab.ops.applyService({ serviceId: "svc-b", attachment: b, ports: [], policy: { mode: "allow-all" } });
  await reaches(t, bGuest, "tcp", UPLINK.internet, INTERNET_PORTS.tcp, /^internet /);
  await reaches(t, lab.host, "tcp", b.address, 80, /^b /); // it does answer, for the host
  await blocked(t, bGuest, "tcp", web.address, 80);
  await blocked(t, guest, "tcp", b.address, 80);
  await reaches(t, bGuest, "tcp", UPLINK.host, 8080, /^web /);
  // The second network's resolver is not its gateway: no DNS on the host for it.
  await blocked(t, bGuest, "udp", second.gateway, 53);
  t.deepEqual((await lab.ops.inventory()).bridges, [network.bridge, second.bridge]);
  await lab.ops.removeService("svc-b");
  t.true(await lab.ops.deleteDevice("vmtap-b"));
  await lab.ops.removeNetwork(second);
  t.deepEqual((await lab.ops.inventory()).bridges, [network.bridge]);
  await reaches(t, guest, "tcp", UPLINK.internet, INTERNET_PORTS.tcp, /^internet /);
  await reaches(t, lab.internet, "tcp", UPLINK.host, 8080, /^web /);
});

test.serial("removing the service and the network leaves no link and no rule", async (t) => {
  await lab.ops.removeService("svc-web");
  await lab.ops.removeService("svc-web"); // absent is not an error
  await blocked(t, lab.internet, "tcp", UPLINK.host, 8080);
  t.true(await lab.ops.deleteDevice(web.hostDevice));
  await lab.ops.removeNetwork(network);
  await lab.ops.removeNetwork(network);
  const links = await lab.host.ipJson<{ ifname: string }[]>("link");
  t.deepEqual(links.map((l) => l.ifname).sort(), ["lo", UPLINK.device]);
  const ruleset = await lab.host.nftRuleset();
  t.deepEqual(ruleset.filter((i) => !("metainfo" in i)), []);
  t.deepEqual(await lab.ops.inventory(), { bridges: [], services: [], devices: [] });
});
