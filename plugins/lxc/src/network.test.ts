// network.ts (what a service's network becomes in the LXC config and the rootfs) and
// legacy-bridge.ts (what a service from before the orchestrator's networks left). The
// legacy cleanup runs in a child inside a network namespace this file makes: it deletes
// the old veth in its own namespace, never the host's.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import test from "ava";
import { NetNamespace } from "../../../ts/core/src/network/testing/netns.js";
import { legacyVethFor } from "./legacy-bridge.js";
import { broadcastOf, canMountResolvConf, resolvConfText } from "./network.js";
import { VmctlError } from "@vmctl/core/contract";
import { busyboxRootfs, lxcpathEntries, requireLxc, scratch, testContext } from "./testing/context.js";

const dir = mkdtempSync(join(tmpdir(), "vmctl-lxc-network-"));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

function rootfsWith(setup: (root: string) => void): string {
  const root = join(dir, `root-${++n}`);
  mkdirSync(root);
  setup(root);
  return root;
}

test("broadcast of the leased address's subnet (LXC needs it given)", (t) => {
  t.is(broadcastOf("10.77.0.2", 24), "10.77.0.255");
  t.is(broadcastOf("10.60.3.9", 20), "10.60.15.255");
  t.is(broadcastOf("192.168.1.130", 25), "192.168.1.255");
  t.is(broadcastOf("192.168.1.2", 30), "192.168.1.3");
});

test("the resolv.conf lists the network's resolvers in order", (t) => {
  t.is(resolvConfText(["9.9.9.9", "1.1.1.1"]).split("\n").filter((l) => !l.startsWith("#")).join("\n"), "nameserver 9.9.9.9\nnameserver 1.1.1.1\n");
});

test("the resolv.conf is mounted over a plain or missing file only, never through a symlink or over a spec mount", (t) => {
  const dns = ["9.9.9.9"];
  const spec = { args: ["true"] };
  t.true(canMountResolvConf(rootfsWith(() => undefined), spec, dns), "no /etc: made as a mount point");
  t.true(canMountResolvConf(rootfsWith((r) => mkdirSync(join(r, "etc"))), spec, dns), "no resolv.conf");
  t.true(canMountResolvConf(rootfsWith((r) => (mkdirSync(join(r, "etc")), writeFileSync(join(r, "etc", "resolv.conf"), "nameserver 8.8.8.8\n"))), spec, dns));
  t.false(canMountResolvConf(rootfsWith(() => undefined), spec, []), "a network without resolvers leaves the rootfs's own");
  t.false(canMountResolvConf(rootfsWith((r) => (mkdirSync(join(r, "etc")), symlinkSync("../run/resolv.conf", join(r, "etc", "resolv.conf")))), spec, dns), "a symlink resolves inside the container");
  t.false(canMountResolvConf(rootfsWith((r) => (mkdirSync(join(r, "real")), symlinkSync("real", join(r, "etc")))), spec, dns), "so does a symlinked /etc");
  t.false(canMountResolvConf(rootfsWith((r) => mkdirSync(join(r, "etc", "resolv.conf"), { recursive: true })), spec, dns), "a directory is not a file");
  for (const destination of ["/etc", "/etc/resolv.conf"]) {
    t.false(canMountResolvConf(rootfsWith(() => undefined), { ...spec, mounts: [{ source: dir, destination }] }, dns), `the spec mounts ${destination}`);
  }
});

test("the old veth name is the one the bridge networking used (vlxc + 11 hex digits of the id's digest)", (t) => {
  t.regex(legacyVethFor("web"), /^vlxc[0-9a-f]{11}$/);
  t.is(legacyVethFor("web"), legacyVethFor("web"));
  t.not(legacyVethFor("web"), legacyVethFor("web2"));
});

/** Runs the legacy child in a fresh namespace; what it found left. */
async function legacyChild(how: "destroy" | "reap"): Promise<{ before: { address?: string; veth: boolean }; pool: string[] | null; links: string[]; ledger: unknown[]; container: boolean }> {
  requireLxc();
  const ns = await NetNamespace.create("lxc-legacy");
  try {
    const state = join(dir, `legacy-${++n}`);
    const rootfs = busyboxRootfs(state);
    const id = `old${n}`;
    const out = await ns.exec(process.execPath, ["--import=tsx", fileURLToPath(new URL("./testing/legacy-child.ts", import.meta.url)), join(state, "state"), join(state, "services", id), id, rootfs, how]);
    return JSON.parse(out) as Awaited<ReturnType<typeof legacyChild>>;
  } finally {
    await ns.delete();
  }
}

test("a service created with network: \"bridge\" before the move is destroyed after it: its pool file, stale veth and ledger entry go, others' addresses stay", async (t) => {
  const r = await legacyChild("destroy");
  t.deepEqual(r.before, { address: "10.213.0.7", veth: true }, "the leftovers were there, and adopt sees the old address");
  t.deepEqual(r.pool, ["10.213.0.8"], "another service's address stays");
  t.deepEqual(r.links, [], "the stale veth (and its peer) went");
  t.deepEqual(r.ledger, []);
  t.false(r.container);
});

test("a reaper removing an old bridged container gives its address and veth back too", async (t) => {
  const r = await legacyChild("reap");
  t.deepEqual(r.pool, ["10.213.0.8"]);
  t.deepEqual(r.links, []);
  t.false(r.container);
});

test("a bad attachment is refused at prepare naming its field, with nothing made or recorded", async (t) => {
  const s = scratch("vmctl-lxc-badnet-");
  t.teardown(() => s.cleanup());
  const factory = s.factory();
  const attachment = { network: "web", bridge: "vmbr-0123456789", address: "10.50.0.7", prefixLength: 24, gateway: "10.50.0.1", dns: [], mac: "02:00:00:00:00:07", hostDevice: "vmtap-0123abcde\nlxc.x", mtu: 1500 };
  const untouched = () => Promise.reject(new Error("nothing on the host may be touched for a refused attachment"));
  const ctx = { ...testContext(s.dir, "badnet"), network: { attachment, createTap: untouched, deleteDevice: untouched } };
  const c = await factory.create("badnet", factory.validate({ rootfs: s.rootfs, args: ["true"] }), ctx);
  const err = await t.throwsAsync(c.prepare(), { instanceOf: VmctlError });
  t.is(err?.code, "INVALID_ARGUMENT");
  t.is(err?.details.field, "network.hostDevice");
  t.deepEqual(ctx.resources.list(), []);
  t.deepEqual(lxcpathEntries(s.lxcpath), []);
  await c.destroy();
});
