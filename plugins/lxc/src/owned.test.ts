// Reaping with real LXC, through a real orchestrator: `prune` kills and removes the
// containers under the target's lxcpath labelled with the orchestrator's owner whose
// service the store does not know, keeps the live service's, never touches another
// owner's; a dry run removes nothing.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { Orchestrator, silentLogger, type PluginRegistration } from "@vmctl/core";
import type { ServiceController } from "@vmctl/core/contract";
import { testTargetContext } from "@vmctl/plugin-conformance";
import type { LxcFactory } from "./factory.js";
import { initLxc } from "./index.js";
import { containerNameFor } from "./layout.js";
import { scratch } from "./testing/context.js";

const s = scratch("vmctl-lxc-owned-");
const engineState = join(s.dir, "vmctld");
const lxcpath = join(engineState, "targets", "lxc", "containers");
const registration: PluginRegistration = { name: "vmctl-plugin-lxc", targets: [{ target: "lxc", init: (env) => initLxc(env) }] };
const engine = await Orchestrator.open({ stateDir: engineState, plugins: [registration], log: silentLogger });
/** A second factory over the engine's lxcpath: what it makes, the engine's target sees. */
const sideFactory = initLxc({ stateDir: join(engineState, "targets", "lxc"), options: {}, log: silentLogger }) as LxcFactory;
const made: ServiceController[] = [];

test.after.always(async () => {
  for (const c of made) await c.destroy().catch(() => undefined);
  for (const svc of engine.list()) await engine.delete(svc.id, { force: true }).catch(() => undefined);
  await engine.close();
  s.cleanup();
});

/** A running container made straight through the target, labelled as `owner`'s service `serviceId`. */
async function labelled(owner: string, serviceId: string): Promise<ServiceController> {
  const ctx = testTargetContext(join(s.dir, "side"), serviceId, { owner });
  const c = await sideFactory.create(serviceId, sideFactory.validate({ rootfs: s.rootfs, args: ["sleep", "600"] }), ctx);
  made.push(c);
  await c.prepare();
  await c.start();
  return c;
}

/** What lxc-info says of the container ("RUNNING", "STOPPED"), or undefined when LXC does not know it. */
function lxcState(name: string): string | undefined {
  const r = spawnSync("lxc-info", ["-P", lxcpath, "-n", name, "-s", "-H"], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() || undefined : undefined;
}

test("prune removes the orphan, keeps the live service and another owner's container; a dry run removes nothing", async (t) => {
  const live = await engine.create({ target: "lxc", spec: { rootfs: s.rootfs, args: ["sleep", "600"] }, start: true });
  const liveName = containerNameFor(live.id);
  t.is(lxcState(liveName), "RUNNING");
  await labelled(engine.instanceId, "00000000deadbeef");
  await labelled("lxc-tests-other-owner", "00000000feedface");
  const orphan = containerNameFor("00000000deadbeef");
  const foreign = containerNameFor("00000000feedface");
  t.is(lxcState(orphan), "RUNNING");

  const dry = await engine.prune({ dryRun: true });
  t.deepEqual(dry.failures, []);
  t.deepEqual(dry.things, [{ target: "lxc", kind: "lxc-container", id: orphan, serviceId: "00000000deadbeef", removed: false }]);
  t.is(lxcState(orphan), "RUNNING", "a dry run removed the orphan");

  const report = await engine.prune();
  t.deepEqual(report.things, [{ target: "lxc", kind: "lxc-container", id: orphan, serviceId: "00000000deadbeef", removed: true }]);
  t.false(existsSync(join(lxcpath, orphan)), "the orphan's directory is still there");
  t.not(lxcState(orphan), "RUNNING");
  t.is(lxcState(liveName), "RUNNING", "the live service's container was touched");
  t.is(engine.get(live.id).phase, "running");
  t.is(lxcState(foreign), "RUNNING", "another owner's container was touched");
  t.deepEqual((await engine.prune()).things, []);
});

test("owned() lists only the owner's containers; removeOwned is idempotent", async (t) => {
  const owner = "lxc-tests-list";
  await labelled(owner, "0000000000000a01");
  await labelled(`${owner}-not`, "0000000000000a02");
  const listed = await sideFactory.owned(owner);
  t.deepEqual(listed, [{ kind: "lxc-container", id: containerNameFor("0000000000000a01"), owner, serviceId: "0000000000000a01" }]);
  await sideFactory.removeOwned(listed[0]!);
  await sideFactory.removeOwned(listed[0]!);
  t.deepEqual(await sideFactory.owned(owner), []);
  t.is(lxcState(containerNameFor("0000000000000a02")), "RUNNING");
});
