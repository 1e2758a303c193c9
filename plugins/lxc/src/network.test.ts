import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import test from "ava";
import { VmctlError } from "@vmctl/core/contract";
import { AddressPool, attachmentFor, hostRange, hostVethFor, hwaddrFor, parseNetworkOptions } from "./network.js";

const dir = mkdtempSync(join(tmpdir(), "vmctl-lxc-network-"));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const poolDir = () => join(dir, `pool-${n++}`);

test("network options: defaults, the gateway is .1, the range leaves out network, gateway and broadcast", (t) => {
  const net = parseNetworkOptions({});
  t.like(net, { bridge: "vmctl-lxc0", subnet: "10.213.0.0/24", prefix: 24, gateway: "10.213.0.1", broadcast: "10.213.0.255" });
  t.deepEqual(hostRange(net), { first: net.network + 2, count: 253 });
  const small = parseNetworkOptions({ bridge: "br-test", subnet: "192.168.7.8/29" });
  t.like(small, { bridge: "br-test", gateway: "192.168.7.9", broadcast: "192.168.7.15" });
  t.is(hostRange(small).count, 5);
});

test("per-service names: host veth ≤ 15 characters and stable, MAC from the address", (t) => {
  const veth = hostVethFor("a-rather-long-service-id-with-many-characters");
  t.is(veth.length, 15);
  t.regex(veth, /^vlxc[0-9a-f]{11}$/);
  t.is(hostVethFor("x"), hostVethFor("x"));
  t.not(hostVethFor("x"), hostVethFor("y"));
  t.is(hwaddrFor("10.213.0.5"), "02:4c:0a:d5:00:05");
  t.like(attachmentFor(parseNetworkOptions({}), "svc", "10.213.0.9"), { bridge: "vmctl-lxc0", prefix: 24, gateway: "10.213.0.1", hwaddr: "02:4c:0a:d5:00:09" });
});

test("claim: one address per service, idempotent, within the range, released and reused", (t) => {
  const pool = new AddressPool(poolDir(), parseNetworkOptions({ subnet: "10.9.0.0/24" }));
  const a = pool.claim("svc-a");
  const b = pool.claim("svc-b");
  t.not(a, b);
  t.is(pool.claim("svc-a"), a, "a second claim returns the held address");
  t.is(pool.lookup("svc-b"), b);
  t.regex(a, /^10\.9\.0\.(\d+)$/);
  for (const ip of [a, b]) {
    const last = Number(ip.split(".")[3]);
    t.true(last >= 2 && last <= 254, ip);
  }
  t.is(readFileSync(join(pool.dir, a), "utf8"), "svc-a");
  pool.release("svc-b", a); // not b's: nothing happens
  t.is(pool.lookup("svc-a"), a);
  pool.release("svc-a", a);
  t.is(pool.lookup("svc-a"), undefined);
  t.false(existsSync(join(pool.dir, a)));
  // The same id gets the same address back while it is free (derived from the id).
  t.is(pool.claim("svc-a"), a);
  t.deepEqual(readdirSync(pool.dir).sort(), [a, b].sort(), "no temp files are left");
});

test("an exhausted subnet refuses with RESOURCE_EXHAUSTED and claims nothing; a release makes room", (t) => {
  const pool = new AddressPool(poolDir(), parseNetworkOptions({ subnet: "10.9.1.0/29" }));
  const held = ["s1", "s2", "s3", "s4", "s5"].map((id) => pool.claim(id));
  t.is(new Set(held).size, 5);
  const err = t.throws(() => pool.claim("s6"), { instanceOf: VmctlError });
  t.is(err?.code, "RESOURCE_EXHAUSTED");
  t.regex(err?.message ?? "", /no free address on bridge vmctl-lxc0.*10\.9\.1\.0\/29/);
  t.is(readdirSync(pool.dir).length, 5);
  pool.release("s3", held[2]!);
  t.is(pool.claim("s6"), held[2]!);
});

test("concurrent claims from several processes never share an address", async (t) => {
  const dirPath = poolDir();
  const child = fileURLToPath(new URL("./testing/claim-child.ts", import.meta.url));
  const run = promisify(execFile);
  const groups = [0, 1, 2].map((g) => Array.from({ length: 20 }, (_, i) => `svc-${g}-${i}`));
  // A /26 has 61 addresses for 60 services: the probes collide a lot.
  const results = await Promise.all(groups.map((ids) => run(process.execPath, ["--import=tsx", child, dirPath, "10.9.2.0/26", ...ids])));
  const claimed = results.map((r) => JSON.parse(r.stdout) as Record<string, string>);
  const all = claimed.flatMap((c) => Object.values(c));
  t.is(all.length, 60);
  t.is(new Set(all).size, 60, "every service got its own address");
  const pool = new AddressPool(dirPath, parseNetworkOptions({ subnet: "10.9.2.0/26" }));
  for (const c of claimed) for (const [id, ip] of Object.entries(c)) t.is(pool.claims().get(ip), id);
});
