// network: "bridge" against real LXC and iproute2: a veth on a bridge the plugin makes,
// an address from the pool, reachable from the host and from another service; destroy
// leaves no veth and frees the address. Bridge and subnet are private to this file.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { execToEnd } from "@vmctl/core/target-kit";
import { VmctlError } from "@vmctl/core/contract";
import type { LxcController } from "./controller.js";
import { hostVethFor, hwaddrFor } from "./network.js";
import type { LxcSpec } from "./spec.js";
import { deleteBridge, lxcpathEntries, scratch, testContext, testNetwork, type TestContext } from "./testing/context.js";
import { untilStdout } from "@vmctl/plugin-conformance";

const net = testNetwork();
const s = scratch("vmctl-lxc-bridge-", net);
test.after.always(() => {
  s.cleanup();
  deleteBridge(net.bridge);
});
const factory = s.factory();
const busybox = ["/bin/busybox", "/usr/bin/busybox"].find((p) => existsSync(p))!;
const pool = join(s.stateDir, "addresses", net.bridge);
let seq = 0;

async function service(t: import("ava").ExecutionContext, spec: Partial<LxcSpec>, f = factory): Promise<{ c: LxcController; ctx: TestContext; id: string }> {
  const id = `b${++seq}-${process.pid}`;
  const ctx = testContext(s.dir, id);
  const c = await f.create(id, f.validate({ rootfs: s.rootfs, network: "bridge", args: ["sh", "-c", "echo up; exec sleep 60"], ...spec }), ctx);
  t.teardown(() => c.destroy());
  return { c, ctx, id };
}

function link(name: string): boolean {
  return spawnSync("ip", ["link", "show", "dev", name], { stdio: "ignore" }).status === 0;
}

function hostPing(address: string): boolean {
  return spawnSync(busybox, ["ping", "-c", "1", "-W", "2", address], { stdio: "ignore" }).status === 0;
}

test("network is claimed", (t) => {
  t.true(factory.capabilities.network);
});

test("a bridge service gets an address from the subnet, reachable from the host; destroy frees it and leaves no veth", async (t) => {
  const { c, ctx, id } = await service(t, {});
  await c.prepare();
  const held = ctx.resources.list().find((r) => r.kind === "ip-address");
  const address = (held?.data as { address?: string } | undefined)?.address;
  t.truthy(address, "the address is in the ledger once claimed");
  t.is(readFileSync(join(pool, address!), "utf8"), id);
  const prefix = net.subnet.split(".").slice(0, 3).join(".");
  t.true(address!.startsWith(`${prefix}.`));
  t.is((await c.state()).addresses, undefined, "no address before it runs");

  await c.start();
  await untilStdout(c, "up");
  const state = await c.state();
  t.is(state.phase, "running");
  t.deepEqual(state.addresses, [address]);
  t.true(link(net.bridge), "the bridge was made on demand");
  t.is(readFileSync(`/sys/class/net/${net.bridge}/address`, "utf8").trim(), hwaddrFor(`${prefix}.1`), "with a fixed MAC");
  t.true(link(hostVethFor(id)), "the host-side veth carries the derived name");
  t.true(hostPing(address!), "the host reaches the container");
  const gw = await execToEnd(await c.exec({ args: ["ping", "-c", "1", "-W", "2", `${prefix}.1`] }));
  t.is(gw.code, 0, `the container reaches the gateway (the bridge): ${Buffer.from(gw.stdout).toString()}${Buffer.from(gw.stderr).toString()}`);
  const shown = await execToEnd(await c.exec({ args: ["ip", "-4", "addr", "show", "eth0"] }));
  t.regex(Buffer.from(shown.stdout).toString(), new RegExp(`inet ${address!.replace(/\./g, "\\.")}/24 brd ${prefix}\\.255`));

  await c.destroy();
  t.false(link(hostVethFor(id)), "the veth went with the container");
  t.false(existsSync(join(pool, address!)), "the address is free again");
  t.deepEqual(ctx.resources.list(), []);
  t.true(link(net.bridge), "the bridge stays (like docker0)");
});

test("the veth goes with the container's network namespace when the workload ends (before destroy)", async (t) => {
  const { c, id } = await service(t, { args: ["sh", "-c", "echo up; sleep 0.2"] });
  await c.start();
  t.true(link(hostVethFor(id)));
  t.is((await c.wait()).code, 0);
  t.false(link(hostVethFor(id)));
  t.is((await c.state()).addresses, undefined, "an exited service reports no address");
});

test("a template container gets the bridge too (lxc-create keeps our network lines)", async (t) => {
  const id = `b${++seq}-${process.pid}`;
  const ctx = testContext(s.dir, id);
  const c = await factory.create(id, factory.validate({ template: "busybox", network: "bridge", args: ["sh", "-c", "echo up; exec sleep 60"] }), ctx);
  t.teardown(() => c.destroy());
  await c.start();
  await untilStdout(c, "up");
  const address = (await c.state()).addresses?.[0];
  t.truthy(address);
  t.true(hostPing(address!));
});

test("two bridge services reach each other", async (t) => {
  const a = await service(t, {});
  const b = await service(t, {});
  await Promise.all([a.c.start(), b.c.start()]);
  const [sa, sb] = await Promise.all([a.c.state(), b.c.state()]);
  const ipA = sa.addresses![0]!;
  const ipB = sb.addresses![0]!;
  t.not(ipA, ipB);
  t.is((await execToEnd(await a.c.exec({ args: ["ping", "-c", "1", "-W", "2", ipB] }))).code, 0);
  t.is((await execToEnd(await b.c.exec({ args: ["ping", "-c", "1", "-W", "2", ipA] }))).code, 0);
});

test("a host-side veth left by a crash does not block the next start", async (t) => {
  const { c, id } = await service(t, {});
  const veth = hostVethFor(id);
  const peer = `vlxcpeer${process.pid % 100000}`;
  t.is(spawnSync("ip", ["link", "add", veth, "type", "veth", "peer", "name", peer]).status, 0);
  t.teardown(() => deleteBridge(veth));
  await c.start();
  await untilStdout(c, "up");
  t.is((await c.state()).phase, "running");
  await c.destroy();
  t.false(link(veth));
  t.false(link(peer));
});

test("after a restart, adopt keeps the address; destroy then frees it", async (t) => {
  const { c, ctx, id } = await service(t, {});
  await c.start();
  const address = (await c.state()).addresses![0]!;
  const again = s.factory();
  const adopted = (await again.adopt({ id, target: "lxc", spec: factory.validate({ rootfs: s.rootfs, network: "bridge", args: ["true"] }), data: c.record(), resources: ctx.resources.list() }, ctx))!;
  t.deepEqual((await adopted.state()).addresses, [address]);
  await adopted.destroy();
  t.false(existsSync(join(pool, address)));
  t.false(link(hostVethFor(id)));
});

test("an exhausted subnet refuses at prepare with RESOURCE_EXHAUSTED, leaving nothing; a destroy makes room", async (t) => {
  // A /30 holds one service address (network, gateway and broadcast are not handed out). Never started: no bridge is made.
  const tiny = scratch("vmctl-lxc-tiny-", { bridge: `${net.bridge}x`, subnet: "10.213.250.0/30" });
  t.teardown(() => tiny.cleanup());
  const f = tiny.factory();
  const first = await service(t, {}, f);
  await first.c.prepare();
  const second = await service(t, {}, f);
  const err = await t.throwsAsync(second.c.prepare(), { instanceOf: VmctlError });
  t.is(err?.code, "RESOURCE_EXHAUSTED");
  t.deepEqual(second.ctx.resources.list(), [], "nothing recorded");
  t.false(existsSync(join(second.ctx.serviceDir, "run")));
  t.false(lxcpathEntries(join(tiny.stateDir, "containers")).some((e) => e.includes(second.id)));
  await first.c.destroy();
  await second.c.prepare();
  t.deepEqual(readdirSync(join(tiny.stateDir, "addresses", `${net.bridge}x`)), ["10.213.250.2"]);
  t.false(link(`${net.bridge}x`));
});

test('"bridge" validates; other network values are refused naming network', (t) => {
  t.is(factory.validate({ rootfs: s.rootfs, args: ["true"], network: "bridge" }).network, "bridge");
  for (const network of ["host", "Bridge", "", null, true]) {
    const err = t.throws(() => factory.validate({ rootfs: s.rootfs, args: ["true"], network }));
    t.is((err as { field?: string }).field, "network", String(network));
  }
});
