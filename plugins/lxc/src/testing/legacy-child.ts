// Child process for the legacy cleanup test, run inside a test network namespace (the old
// host-side veth is deleted in the caller's namespace): an orchestrator after the upgrade
// adopts a service recorded before it, with `network: "bridge"`, its address file in the
// old pool and a veth a crash left, and destroys it — or, with "reap", a reaper removes its
// labelled container. Prints what is left as one JSON line.
// argv: stateDir serviceDir serviceId rootfs destroy|reap
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { MemoryLogger, testTargetContext } from "@vmctl/plugin-conformance";
import { legacyAddress, legacyVethFor } from "../legacy-bridge.js";
import { containerDir, containerNameFor } from "../layout.js";
import { initLxc } from "../index.js";
import type { LxcSpec } from "../spec.js";

const [stateDir, serviceDir, serviceId, rootfs, how] = process.argv.slice(2) as [string, string, string, string, string];
const ip = (...args: string[]) => {
  const r = spawnSync("ip", args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`ip ${args.join(" ")}: ${r.stderr}`);
};
const links = () => readdirSync("/sys/class/net");

// What the old code left: the pool file (another service's too), the veth pair, a labelled container dir.
const pool = join(stateDir, "addresses", "vmctl-lxc0");
mkdirSync(pool, { recursive: true });
writeFileSync(join(pool, "10.213.0.7"), serviceId);
writeFileSync(join(pool, "10.213.0.8"), "someone-else");
const veth = legacyVethFor(serviceId);
ip("link", "add", veth, "type", "veth", "peer", "name", "vlxcpeer0");
const name = containerNameFor(serviceId);
mkdirSync(containerDir(join(stateDir, "containers"), name), { recursive: true });
writeFileSync(join(containerDir(join(stateDir, "containers"), name), "config"), `# label vmctl.io/owner=legacy-test\n# label vmctl.io/service=${serviceId}\nlxc.rootfs.path = dir:${rootfs}\n`);
const before = { address: legacyAddress(join(stateDir, "addresses"), serviceId), veth: links().includes(veth) };

const factory = initLxc({ stateDir, options: {}, log: new MemoryLogger() });
if (!factory) throw new Error("lxc target did not initialise");
const ledger = [{ kind: "ip-address", key: name, data: { pool, address: "10.213.0.7" } }];
const ctx = testTargetContext(stateDir, serviceId, { owner: "legacy-test", serviceDir, resources: ledger });
if (how === "reap") {
  const owned = await factory.owned("legacy-test");
  for (const thing of owned) await factory.removeOwned(thing);
} else {
  const spec: LxcSpec = { rootfs, args: ["true"], network: "bridge" };
  const c = await factory.adopt({ id: serviceId, target: "lxc", spec, data: { name }, resources: ledger }, ctx);
  if (!c) throw new Error("adopt found nothing");
  await c.destroy();
}
process.stdout.write(
  `${JSON.stringify({
    before,
    pool: existsSync(pool) ? readdirSync(pool) : null,
    links: links().filter((l) => l.startsWith("vlxc")),
    ledger: ctx.resources.list(),
    container: existsSync(containerDir(join(stateDir, "containers"), name)),
  })}\n`,
);
