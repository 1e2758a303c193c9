// The addon's networking functions as JavaScript sees them: results shaped as index.d.ts
// says, errors with a `code` property. Anything that changes links or rules runs in a
// child under `unshare --net` (a network namespace of its own), never in the runner's.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { promisify } from "node:util";
import test from "ava";
import { createTap, ensureBridge, nftRun, writeNetSysctl } from "@vmctl/native";

const run = promisify(execFile);

function unshareTool(): string {
  const found = ["/usr/bin/unshare", "/bin/unshare"].find((p) => existsSync(p));
  if (found === undefined) throw new Error("these tests need `unshare` (Debian package util-linux)");
  return found;
}

/** Runs `body` (an ES module's text importing @vmctl/native) in a new network namespace; its stdout parsed. */
async function inNetns<T>(body: string): Promise<T> {
  const { stdout } = await run(unshareTool(), ["--net", process.execPath, "--input-type=module", "-e", body], { cwd: new URL("..", import.meta.url).pathname });
  return JSON.parse(stdout) as T;
}

test("bad input is refused before anything is touched, with code INVALID_ARGUMENT and the field first", (t) => {
  const cases: [() => unknown, RegExp][] = [
    [() => ensureBridge({ name: "a/b", address: "10.0.0.1/24" }), /^name: /],
    [() => ensureBridge({ name: "vmbr-x", address: "10.0.0.1" }), /^address: /],
    [() => createTap({ name: "vmtap-x", mtu: 1 }), /^mtu: /],
    [() => createTap({ name: "x".repeat(16) }), /^name: .*longer than 15 bytes/],
    [() => nftRun("flush ruleset"), /^commands: /],
    [() => writeNetSysctl("../../../etc/passwd", "x"), /^key: /],
  ];
  for (const [call, message] of cases) {
    const err = t.throws(call) as Error & { code?: string };
    t.is(err.code, "INVALID_ARGUMENT", err.message);
    t.regex(err.message, message);
  }
});

test("in a namespace of its own: bridge, TAP, listings, sysctl and nft, with kernel errors as codes", async (t) => {
  const result = await inNetns<{
    links: { name: string; kind?: string; master?: string; up: boolean; mtu: number; addresses: string[]; alias?: string }[];
    routes: { destination: string; device?: string }[];
    forward: string;
    listed: string;
    notFound: string;
    notABridge: string;
    deleted: boolean[];
  }>(`
    import * as n from "@vmctl/native";
    const code = (f) => { try { f(); return "none"; } catch (e) { return e.code; } };
    n.ensureBridge({ name: "vmbr-js", address: "10.77.0.1/24", alias: "vmctl network js" });
    n.createTap({ name: "vmtap-js", bridge: "vmbr-js", mtu: 1400, alias: "vmctl device" });
    n.writeNetSysctl("ipv4/ip_forward", "1");
    n.nftRun(JSON.stringify({ nftables: [{ add: { table: { family: "inet", name: "js" } } }] }));
    const out = {
      links: n.listLinks(),
      routes: n.listRoutes(),
      forward: n.readNetSysctl("ipv4/ip_forward"),
      listed: n.nftRun(JSON.stringify({ nftables: [{ list: { table: { family: "inet", name: "js" } } }] })),
      notFound: code(() => n.nftRun(JSON.stringify({ nftables: [{ delete: { table: { family: "inet", name: "absent" } } }] }))),
      notABridge: code(() => n.ensureBridge({ name: "vmtap-js", address: "10.78.0.1/24" })),
      deleted: [n.deleteLink("vmtap-js"), n.deleteLink("vmtap-js")],
    };
    console.log(JSON.stringify(out));
  `);
  const bridge = result.links.find((l) => l.name === "vmbr-js");
  const tap = result.links.find((l) => l.name === "vmtap-js");
  t.like(bridge, { kind: "bridge", up: true, addresses: ["10.77.0.1/24"], alias: "vmctl network js" });
  t.like(tap, { kind: "tun", master: "vmbr-js", up: true, mtu: 1400, alias: "vmctl device" });
  t.true(result.routes.some((r) => r.destination === "10.77.0.0/24" && r.device === "vmbr-js"), JSON.stringify(result.routes));
  t.is(result.forward, "1");
  t.true((JSON.parse(result.listed) as { nftables: { table?: { name: string } }[] }).nftables.some((i) => i.table?.name === "js"));
  t.is(result.notFound, "NOT_FOUND");
  t.is(result.notABridge, "ALREADY_EXISTS");
  t.deepEqual(result.deleted, [true, false]);
});
