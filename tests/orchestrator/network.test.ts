// Networks end to end, against a real vmctld whose host networking is real — inside a
// network namespace this test makes (helpers/netns.ts), never the host's own. The
// "nettap" fixture target makes a TAP per service as a microVM target does. Checked with
// `ip -j` and `nft` in the namespace: bridges, TAPs and rules appear and go with what
// owns them, bad input is refused naming its field with nothing made, leases are reused
// only once released.
import { spawn, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import test from "ava";
import { VmctlError, type ServiceRecord } from "@vmctl/client";
import { NETTAP_FIXTURE, nftPath, TestNetns, UPLINK_SUBNET } from "./helpers/netns.js";
import { Daemon, PROCESS_PLUGIN_FIXTURE, sandbox, teardown, until, vmctl, type Sandbox } from "./helpers/sandbox.js";

let sb: Sandbox;
let ns: TestNetns;
let daemon: Daemon;

test.before(async () => {
  sb = sandbox("vmctl-network-");
  ns = TestNetns.create();
  daemon = await Daemon.start(sb, { plugins: [NETTAP_FIXTURE, PROCESS_PLUGIN_FIXTURE], extraArgs: ["--no-builtins"], wrap: (argv) => ns.wrap(argv) });
});

test.after.always(async () => {
  if (sb) await teardown(sb, [daemon]);
  ns?.remove();
});

/** What of ours is in the namespace: bridges (with what is on each) and TAPs. */
function ours(): { bridges: string[]; taps: Map<string, string | undefined> } {
  const links = ns.links();
  return {
    bridges: links.filter((l) => l.ifname.startsWith("vmbr-")).map((l) => l.ifname).sort(),
    taps: new Map(links.filter((l) => l.ifname.startsWith("vmtap-")).map((l) => [l.ifname, l.master])),
  };
}

async function refused(promise: Promise<unknown>, code: string, field: string, message?: RegExp): Promise<VmctlError> {
  let err: unknown;
  try {
    await promise;
  } catch (e) {
    err = e;
  }
  if (!(err instanceof VmctlError)) throw new Error(`expected ${code} on ${field}, got ${err === undefined ? "success" : String(err)}`);
  if (err.code !== code || err.details.field !== field || (message !== undefined && !message.test(err.message))) {
    throw new Error(`expected ${code} on ${field}${message ? ` matching ${message}` : ""}, got ${err.code} on ${err.details.field}: ${err.message}`);
  }
  return err;
}

const nettap = (name: string, fields: Record<string, unknown> = {}) => ({ name, target: "nettap", spec: {}, network: "web", start: true, ...fields });

test.serial("named networks: made with a subnet or from the pool, listed, inspected, removed with their bridge", async (t) => {
  const c = daemon.client;
  const web = await c.createNetwork({ name: "web", subnet: "10.50.0.0/24", dns: ["9.9.9.9"] });
  t.like(web, { name: "web", subnet: "10.50.0.0/24", prefixLength: 24, gateway: "10.50.0.1", dns: ["9.9.9.9"], policy: { mode: "allow-all" }, services: [] });
  t.regex(web.bridge, /^vmbr-[0-9a-f]{10}$/);
  const auto = await c.createNetwork({ name: "auto", policy: { mode: "deny-all" } });
  t.is(auto.subnet, "10.213.0.0/24", "the pool's first free /24");
  t.deepEqual(auto.policy, { mode: "deny-all" });
  t.deepEqual(ours().bridges, [web.bridge, auto.bridge].sort());
  const bridge = ns.links().find((l) => l.ifname === web.bridge);
  t.is(bridge?.linkinfo?.info_kind, "bridge");
  t.true(ns.ip(["-j", "addr", "show", "dev", web.bridge]).includes("10.50.0.1"), "the gateway is the bridge's address");

  const table = await vmctl(sb, ["network", "ls"]);
  t.is(table.code, 0, table.stderr);
  t.regex(table.stdout, /^NAME +SUBNET +GATEWAY +BRIDGE +POLICY +SERVICES +AGE$/m);
  t.regex(table.stdout, /^web +10\.50\.0\.0\/24 +10\.50\.0\.1 +vmbr-\w+ +allow-all +0 /m);
  const listed = JSON.parse((await vmctl(sb, ["network", "ls", "--json"])).stdout) as { name: string }[];
  t.deepEqual(listed.map((n) => n.name).sort(), ["auto", "web"]);
  const inspected = JSON.parse((await vmctl(sb, ["network", "inspect", "auto"])).stdout) as { subnet: string; policy: unknown }[];
  t.like(inspected[0], { subnet: "10.213.0.0/24", policy: { mode: "deny-all" } });

  const rm = await vmctl(sb, ["network", "rm", "auto"]);
  t.is(rm.code, 0, rm.stderr);
  t.deepEqual(ours().bridges, [web.bridge]);
  const gone = await vmctl(sb, ["network", "inspect", "auto"]);
  t.is(gone.code, 1);
  t.regex(gone.stderr, /no network named "auto"/);
});

test.serial("bad network input is refused naming the field, and nothing is made", async (t) => {
  const c = daemon.client;
  const before = { networks: (await c.listNetworks()).map((n) => n.name), links: ours() };
  await refused(c.createNetwork({ name: "clash", subnet: "10.50.0.128/25" }), "INVALID_ARGUMENT", "subnet", /overlaps network web \(10\.50\.0\.0\/24\)/);
  await refused(c.createNetwork({ name: "clash", subnet: UPLINK_SUBNET }), "INVALID_ARGUMENT", "subnet", /host's own 192\.0\.2\.0\/24/);
  await refused(c.createNetwork({ name: "web" }), "ALREADY_EXISTS", "name");
  await refused(c.createNetwork({ name: "none" }), "INVALID_ARGUMENT", "name", /reserved/);
  await refused(c.createNetwork({ name: "Web\u0000" }), "INVALID_ARGUMENT", "name");
  await refused(c.createNetwork({ name: "x".repeat(100) }), "INVALID_ARGUMENT", "name");
  await refused(c.createNetwork({ name: "clash", subnet: "10.60.0.1/24" }), "INVALID_ARGUMENT", "subnet", /host bits/);
  await refused(c.createNetwork({ name: "clash", subnet: "10.60.0.0/8" }), "INVALID_ARGUMENT", "subnet");
  await refused(c.createNetwork({ name: "clash", dns: ["resolver.example"] }), "INVALID_ARGUMENT", "dns[0]");
  await refused(c.createNetwork({ name: "clash", policy: { mode: "allow", cidrs: ["10.0.0.0/8", "10.0.0/8"] } }), "INVALID_ARGUMENT", "policy.cidrs[1]");
  await refused(c.getNetwork("nope"), "NOT_FOUND", "name");
  await refused(c.deleteNetwork("nope"), "NOT_FOUND", "name");
  t.deepEqual((await c.listNetworks()).map((n) => n.name), before.networks);
  t.deepEqual(ours(), before.links);
  const cli = await vmctl(sb, ["network", "create", "clash", "--network-policy", "allow:nope"]);
  t.is(cli.code, 2);
  t.regex(cli.stderr, /--network-policy "allow:nope": .*cidrs\[0\]/);
});

test.serial("a service on a network: its lease, its TAP on the bridge, its rules; shown by inspect and ps; all gone on delete", async (t) => {
  const c = daemon.client;
  const web = await c.getNetwork("web");
  const s = await c.create(nettap("front", { ports: [{ hostPort: 8080, guestPort: 80, protocol: "tcp" }], networkPolicy: { mode: "allow", cidrs: ["10.0.0.0/8"] } }));
  t.is(s.phase, "running");
  t.like(s.network, {
    network: "web",
    address: "10.50.0.2",
    prefixLength: 24,
    gateway: "10.50.0.1",
    dns: ["9.9.9.9"],
    ports: [{ hostPort: 8080, guestPort: 80, protocol: "tcp" }],
    policy: { mode: "allow", cidrs: ["10.0.0.0/8"] },
    ownPolicy: true,
  });
  t.regex(s.network?.mac ?? "", /^02(:[0-9a-f]{2}){5}$/);
  t.regex(s.network?.hostDevice ?? "", /^vmtap-[0-9a-f]{9}$/);
  const tap = ns.links().find((l) => l.ifname === s.network?.hostDevice);
  t.is(tap?.master, web.bridge, "the TAP is on its network's bridge");
  t.is(tap?.linkinfo?.info_kind, "tun");
  const rules = ns.rulesetText();
  t.true(rules.includes("10.50.0.2") && rules.includes("8080"), rules);
  t.deepEqual((await c.getNetwork("web")).services, [s.id]);

  const second = await c.create(nettap("back"));
  t.is(second.network?.address, "10.50.0.3");
  t.like(second.network, { policy: { mode: "allow-all" }, ownPolicy: false, ports: [] });

  const ps = await vmctl(sb, ["ps"]);
  t.regex(ps.stdout, /^ID +NAME +TARGET +PHASE +ADDRESS +EXIT +AGE$/m);
  t.regex(ps.stdout, new RegExp(`^${s.id} +front +nettap +running +10\\.50\\.0\\.2 `, "m"));
  const inspect = JSON.parse((await vmctl(sb, ["inspect", "front"])).stdout) as ServiceRecord[];
  t.like(inspect[0]?.network, { address: "10.50.0.2", gateway: "10.50.0.1", hostDevice: s.network?.hostDevice });

  const busy = await refused(c.deleteNetwork("web"), "FAILED_PRECONDITION", "name");
  t.regex(busy.message, /front/);

  await c.delete("front", { force: true });
  t.false(ours().taps.has(s.network?.hostDevice ?? ""), "its TAP went with it");
  const after = ns.rulesetText();
  t.false(after.includes("10.50.0.2"), `its rules went with it:\n${after}`);
  // Its address is free again, and is the lowest free one.
  const third = await c.create(nettap("again"));
  t.is(third.network?.address, "10.50.0.2");
  await c.delete("again", { force: true });
  await c.delete("back", { force: true });
  t.deepEqual([...ours().taps.keys()], []);
});

test.serial("bad service input is refused naming the field, and nothing is made", async (t) => {
  const c = daemon.client;
  const holder = await c.create(nettap("holder", { ports: [{ hostPort: 8081, guestPort: 80, protocol: "tcp" }] }));
  const before = { services: (await c.list()).map((s) => s.id), links: ours(), rules: ns.rulesetText() };
  await refused(c.create(nettap("x", { network: "nope" })), "NOT_FOUND", "network");
  await refused(c.create(nettap("x", { ports: [{ hostPort: 8081, guestPort: 81, protocol: "tcp" }] })), "ALREADY_EXISTS", "ports[0].hostPort", new RegExp(holder.id));
  await refused(c.create(nettap("x", { ports: [{ hostPort: 0, guestPort: 81, protocol: "tcp" }] })), "INVALID_ARGUMENT", "ports[0].hostPort");
  await refused(c.create(nettap("x", { ports: [{ hostPort: 81, guestPort: 81, protocol: "tcp", hostAddress: "203.0.113.9" }] })), "INVALID_ARGUMENT", "ports[0].hostAddress", /not an address of this host/);
  await refused(c.create(nettap("x", { networkPolicy: { mode: "allow", cidrs: ["10.0.0.0/8", "not-a-cidr"] } })), "INVALID_ARGUMENT", "networkPolicy.cidrs[1]");
  await refused(c.create(nettap("x", { network: "none", ports: [{ hostPort: 82, guestPort: 80, protocol: "tcp" }] })), "INVALID_ARGUMENT", "ports");
  await refused(c.create({ name: "x", target: "process", spec: { args: ["true"] }, network: "web" }), "FAILED_PRECONDITION", "network");
  // A port something on the host (here: the namespace) listens on.
  const listener = spawn("ip", ns.wrap([process.execPath, "-e", "require('net').createServer().listen(9099, () => console.log('up'))"]).slice(1), { stdio: ["ignore", "pipe", "inherit"] });
  t.teardown(() => listener.kill("SIGKILL"));
  let out = "";
  listener.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  await until("the listener to listen", () => out.includes("up"));
  await refused(c.create(nettap("x", { ports: [{ hostPort: 9099, guestPort: 80, protocol: "tcp" }] })), "ALREADY_EXISTS", "ports[0].hostPort", /in use on the host/);
  // The CLI's spellings are checked before anything is sent.
  const cli = await vmctl(sb, ["run", "--target", "nettap", "--network", "web", "-p", "80", "-d"]);
  t.is(cli.code, 2);
  t.regex(cli.stderr, /-p "80": /);
  t.deepEqual((await c.list()).map((s) => s.id), before.services);
  t.deepEqual(ours(), before.links);
  t.is(ns.rulesetText(), before.rules);
  await c.delete("holder", { force: true });
});

test.serial("a create that fails after its TAP was made leaves no TAP, rule or lease", async (t) => {
  const c = daemon.client;
  const before = { links: ours(), rules: ns.rulesetText() };
  const err = await t.throwsAsync(c.create(nettap("broken", { spec: { failPrepare: true }, ports: [{ hostPort: 8090, guestPort: 80, protocol: "tcp" }] })), { instanceOf: VmctlError });
  t.regex(err?.message ?? "", /prepare failed/);
  t.deepEqual(ours(), before.links);
  t.is(ns.rulesetText(), before.rules);
  const next = await c.create(nettap("next", { ports: [{ hostPort: 8090, guestPort: 80, protocol: "tcp" }] }));
  t.is(next.network?.address, "10.50.0.2", "the failed create's address was released");
  await c.delete("next", { force: true });
});

test.serial("the default network is made on first use from the pool; --network on vmctl run; a restart keeps addresses and makes lost rules again", async (t) => {
  const c = daemon.client;
  const run = await vmctl(sb, ["run", "-d", "--target", "nettap", "--name", "dflt", "--network", "default", "-p", "127.0.0.1:8443:443", "--network-policy", "deny-all"]);
  t.is(run.code, 0, run.stderr);
  const s = await c.get("dflt");
  const dflt = await c.getNetwork("default");
  t.regex(dflt.subnet, /^10\.213\.\d+\.0\/24$/);
  t.like(s.network, { network: "default", gateway: dflt.gateway, ports: [{ hostPort: 8443, guestPort: 443, protocol: "tcp", hostAddress: "127.0.0.1" }], policy: { mode: "deny-all" } });
  const links = ours();
  t.is(links.taps.get(s.network?.hostDevice ?? ""), dflt.bridge);

  t.is(await daemon.stop(), 0);
  // As after a reboot of the host: the rules are gone; the state says what they were.
  spawnSync("ip", ns.wrap([nftPath(), "flush", "ruleset"]).slice(1));
  t.false(ns.rulesetText().includes(s.network?.address ?? "?"));
  daemon = await Daemon.start(sb, { plugins: [NETTAP_FIXTURE, PROCESS_PLUGIN_FIXTURE], extraArgs: ["--no-builtins"], wrap: (argv) => ns.wrap(argv) });
  const again = await daemon.client.get("dflt");
  t.deepEqual(again.network, s.network);
  t.deepEqual(ours(), links);
  t.true(ns.rulesetText().includes(s.network?.address ?? "?"));
  await daemon.client.delete("dflt", { force: true });
  t.false(ours().taps.has(s.network?.hostDevice ?? ""));
});

test.serial("creates racing for a small subnet: each address once, the rest RESOURCE_EXHAUSTED with nothing left of them", async (t) => {
  const c = daemon.client;
  const before = ours();
  await c.createNetwork({ name: "tiny", subnet: "10.70.0.8/29" });
  const outcomes = await Promise.allSettled(Array.from({ length: 9 }, (_, i) => c.create(nettap(`race-${i}`, { network: "tiny" }))));
  const made = outcomes.flatMap((o) => (o.status === "fulfilled" ? [o.value] : []));
  const refused = outcomes.flatMap((o) => (o.status === "rejected" ? [o.reason as VmctlError] : []));
  t.is(made.length, 5, "a /29 has five guest addresses");
  t.deepEqual(made.map((s) => s.network?.address).sort(), ["10.70.0.10", "10.70.0.11", "10.70.0.12", "10.70.0.13", "10.70.0.14"]);
  for (const err of refused) t.like(err, { code: "RESOURCE_EXHAUSTED", details: { field: "network" } });
  t.is(ours().taps.size, before.taps.size + 5, "a TAP for each service made, none for those refused");
  t.is(refused.length, 4);
  // The same request sent again (its answer lost, say) is the same service, not a second lease.
  const once = await c.create({ ...nettap("retried", { network: "web" }), requestId: "net-retry-1" });
  const twice = await c.create({ ...nettap("retried", { network: "web" }), requestId: "net-retry-1" });
  t.is(twice.id, once.id);
  t.deepEqual(twice.network, once.network);
  for (const s of [...made, once]) await c.delete(s.id, { force: true });
  await c.deleteNetwork("tiny");
  t.deepEqual(ours(), before);
});

test.serial("vmctl create --network then vmctl start: the address is leased at create, the service runs at start", async (t) => {
  const created = await vmctl(sb, ["create", "--target", "nettap", "--name", "later", "--network", "web", "-p", "8085:80/udp"]);
  t.is(created.code, 0, created.stderr);
  const id = created.stdout.trim();
  const s = await daemon.client.get(id);
  t.is(s.phase, "created");
  t.like(s.network, { network: "web", ports: [{ hostPort: 8085, guestPort: 80, protocol: "udp" }] });
  t.true(ours().taps.has(s.network?.hostDevice ?? ""));
  const started = await vmctl(sb, ["start", "later"]);
  t.is(started.code, 0, started.stderr);
  t.is((await daemon.client.get(id)).phase, "running");
  await daemon.client.delete(id, { force: true });
});

test.serial("start-up removes what of ours on the host no service or network accounts for", async (t) => {
  t.is(await daemon.stop(), 0);
  const script = fileURLToPath(new URL("./fixtures/leave-ghosts.ts", import.meta.url));
  const made = spawnSync("ip", ns.wrap([process.execPath, "--import=tsx", script]).slice(1), { encoding: "utf8" });
  t.is(made.status, 0, made.stderr);
  t.like(JSON.parse(made.stdout), { services: ["00000000000ghost"] });
  t.true(ns.rulesetText().includes("10.77.0.2"));
  t.true(ours().taps.has("vmtap-ghost0000"));
  daemon = await Daemon.start(sb, { plugins: [NETTAP_FIXTURE, PROCESS_PLUGIN_FIXTURE], extraArgs: ["--no-builtins"], wrap: (argv) => ns.wrap(argv) });
  const links = ours();
  t.false(links.taps.has("vmtap-ghost0000"), "the TAP of no service is gone");
  t.false(links.bridges.includes("vmbr-ghost0000"), "the bridge of no network is gone");
  const rules = ns.rulesetText();
  t.false(rules.includes("10.77.0.2") || rules.includes("ghost"), `the rules of no service or network are gone:\n${rules}`);
  t.true(links.bridges.includes((await daemon.client.getNetwork("web")).bridge), "the networks the state knows stay");
  t.regex(daemon.log(), /removed host networking no service or network owns/);
});
