// A microVM on a network, against the real host side, vmctl-vmm and a test guest, all in
// a network namespace this test makes (never the host's own): the TAP recorded then made
// at prepare, on the bridge; the VMM's NIC on it; the address reported; the TAP deleted
// and released at destroy. The test guest has no network driver: what the guest does
// with its NIC (the agent's set-up) is tested in crates/guest-agent/tests/network.rs and,
// on a real Linux guest, by the nested suite.
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import test from "ava";
import { scratch } from "./testing/context.js";

const s = scratch("vmctl-mvm-net-");
test.after.always(() => s.cleanup());

/** A namespace with an uplink and a default route, as a host has: a network's NAT goes out of it. */
function netns(): string {
  const ns = `vmctl-mvm-${randomBytes(4).toString("hex")}`;
  ip(["netns", "add", ns]);
  try {
    ip(["-n", ns, "link", "set", "lo", "up"]);
    ip(["-n", ns, "link", "add", "uplink0", "type", "veth", "peer", "name", "uplink0p"]);
    ip(["-n", ns, "addr", "add", "192.0.2.2/24", "dev", "uplink0"]);
    ip(["-n", ns, "link", "set", "uplink0", "up"]);
    ip(["-n", ns, "route", "add", "default", "via", "192.0.2.1"]);
  } catch (err) {
    removeNetns(ns);
    throw err;
  }
  return ns;
}

function removeNetns(ns: string): void {
  spawnSync("ip", ["netns", "delete", ns], { stdio: "ignore" });
  rmSync(`/run/netns/${ns}`, { force: true });
}

/** nftables' `nft` (not the bundler's command of that name under node_modules/.bin). */
function nftPath(): string {
  for (const path of ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"]) if (existsSync(path)) return path;
  throw new Error("nft (nftables) is not installed: apt-get install nftables");
}

function ip(args: string[]): void {
  const r = spawnSync("ip", args, { encoding: "utf8" });
  if (r.error !== undefined) throw new Error(`ip (iproute2) could not run: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`ip ${args.join(" ")}: ${r.stderr.trim()}`);
}

type Link = { master?: string; flags?: string[]; linkinfo?: { info_kind?: string } } | null;
type Observed = {
  afterPrepare: { events: string[]; tap: Link; state: { phase: string; addresses?: string[] } };
  whileRunning: { state: { phase: string; pid?: number; addresses?: string[] }; tap: Link; held: string[]; nics: { ifaceId: string; hostDevName?: string; guestMac: string }[]; vmJson: { bootArgs: string; network?: unknown } };
  afterAdopt: { events: string[]; state: { phase: string; pid?: number; addresses?: string[] }; held: string[] };
  stopped: { phase: string; addresses?: string[] };
  afterDestroy: { events: string[]; tap: Link; ledger: unknown[] };
  afterFailure: { failure: { code: string | null; message: string } | null; tap: Link; ledger: unknown[] };
};

test("a network's TAP: in the ledger then made at prepare, the VMM's NIC at start, the address reported, kept across adopt, gone at destroy", (t) => {
  const ns = netns();
  try {
    const child = fileURLToPath(new URL("./testing/network-child.ts", import.meta.url));
    const r = spawnSync("ip", ["netns", "exec", ns, process.execPath, "--import=tsx", child, s.dir, s.guest], { encoding: "utf8", timeout: 60_000 });
    t.is(r.status, 0, `the child failed:\n${r.stderr}`);
    const o = JSON.parse(r.stdout) as Observed;
    const tap = "vmtap-mvmtest7";

    const p = o.afterPrepare;
    t.true(p.events.indexOf(`intend tap ${tap}`) >= 0 && p.events.indexOf(`intend tap ${tap}`) < p.events.indexOf(`createTap ${tap}`), `recorded before made: ${p.events.join(", ")}`);
    t.like(p.tap, { master: "vmbr-mvmtest0", linkinfo: { info_kind: "tun" } }, "a TAP on the bridge once prepared (the host rules need it)");
    t.is(p.state.phase, "created");
    t.is(p.state.addresses, undefined, "the address is reported once the VM is up");

    const w = o.whileRunning;
    t.is(w.state.phase, "running");
    t.deepEqual(w.state.addresses, ["10.66.0.7"]);
    t.like(w.tap, { master: "vmbr-mvmtest0" }, "start made the vanished TAP again");
    t.deepEqual(w.held, [tap], "the VMM holds the TAP open");
    t.deepEqual(w.nics, [{ ifaceId: "eth0", hostDevName: tap, guestMac: "02:00:0a:42:00:07" }]);
    t.regex(w.vmJson.bootArgs, / vmctl\.net=10\.66\.0\.7\/24,10\.66\.0\.1,1500 vmctl\.dns=10\.66\.0\.1,9\.9\.9\.9( |$)/);
    t.like(w.vmJson.network, { hostDevice: tap, mac: "02:00:0a:42:00:07", address: "10.66.0.7" });

    const a = o.afterAdopt;
    t.deepEqual(a.events, [], "adopt redoes nothing: no ledger change, no TAP made");
    t.is(a.state.phase, "running");
    t.is(a.state.pid, w.state.pid);
    t.deepEqual(a.state.addresses, ["10.66.0.7"]);
    t.deepEqual(a.held, [tap], "the VMM still holds the TAP");

    t.is(o.stopped.phase, "exited");
    t.is(o.stopped.addresses, undefined, "an exited VM reports no address");

    const d = o.afterDestroy;
    t.true(d.events.includes(`deleteDevice ${tap}`) && d.events.includes(`release tap ${tap}`), d.events.join(", "));
    t.is(d.tap, null, "the TAP is gone");
    t.deepEqual(d.ledger, [], "every ledger entry released");

    const f = o.afterFailure;
    t.is(f.failure?.code, "NOT_FOUND", f.failure?.message);
    t.regex(f.failure?.message ?? "", /vmbr-missing0/);
    t.is(f.tap, null);
    t.deepEqual(f.ledger, [], "nothing half-made is left in the ledger");
  } finally {
    removeNetns(ns);
  }
});

type EngineObserved = {
  network: { bridge: string; gateway: string; dns: string[] };
  running: { record: { phase: string; addresses: string[]; network?: { address: string; hostDevice: string } }; taps: { ifname: string; master?: string }[]; rules: string };
  deleted: { taps: unknown[]; rules: string };
};

test("through the orchestrator: a service on a network with a published port gets its TAP on the bridge, its address and its DNAT; delete leaves nothing", (t) => {
  const ns = netns();
  try {
    const resolvConf = join(s.dir, "resolv.conf");
    writeFileSync(resolvConf, "nameserver 192.0.2.53\n");
    const child = fileURLToPath(new URL("./testing/network-engine-child.ts", import.meta.url));
    const r = spawnSync("ip", ["netns", "exec", ns, process.execPath, "--import=tsx", child, join(s.dir, "engine"), resolvConf, nftPath()], { encoding: "utf8", timeout: 60_000 });
    t.is(r.status, 0, `the child failed:\n${r.stderr}`);
    const o = JSON.parse(r.stdout) as EngineObserved;
    const { record, taps, rules } = o.running;
    t.is(record.phase, "running");
    const address = record.network?.address ?? "";
    t.regex(address, /^10\.67\.0\.\d+$/);
    t.deepEqual(record.addresses, [address], "the target's address is the service's");
    t.deepEqual(taps.map((l) => [l.ifname, l.master]), [[record.network?.hostDevice, o.network.bridge]], "one TAP, the service's, on the network's bridge");
    t.true(rules.includes(address) && rules.includes("8088"), `the published port's DNAT to ${address}:\n${rules}`);
    t.deepEqual(o.deleted.taps, [], "the TAP is gone");
    t.false(o.deleted.rules.includes(address), `the service's rules are gone:\n${o.deleted.rules}`);
  } finally {
    removeNetns(ns);
  }
});
