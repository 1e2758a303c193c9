// Reaping with real runc, through a real orchestrator: `prune` deletes containers under
// the target's root annotated with the orchestrator's owner whose service the store
// does not know (also one annotated the way earlier versions did), keeps the live
// service's, never touches another owner's; a dry run deletes nothing.
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { Orchestrator, silentLogger, type PluginRegistration } from "@vmctl/core";
import { SERVICE_LABEL, type ServiceController } from "@vmctl/core/contract";
import { testTargetContext } from "@vmctl/plugin-conformance";
import { initOci } from "./index.js";
import { containerIdFor, LEGACY_SERVICE_ANNOTATION } from "./layout.js";
import type { OciFactory } from "./factory.js";
import { requireRunc, scratch } from "./testing/context.js";

const s = scratch("vmctl-oci-owned-");
const runc = requireRunc();
const engineState = join(s.dir, "vmctld");
const registration: PluginRegistration = { name: "vmctl-plugin-oci", targets: [{ target: "oci", init: (env) => initOci(env) }] };
const engine = await Orchestrator.open({ stateDir: engineState, plugins: [registration], targetOptions: { oci: { runc } }, log: silentLogger });
/** A second factory over the engine's runc root: what it makes, the engine's target sees. */
const sideFactory = initOci({ stateDir: join(engineState, "targets", "oci"), options: { runc }, log: silentLogger }) as OciFactory;
const made: ServiceController[] = [];

test.after.always(async () => {
  for (const c of made) await c.destroy().catch(() => undefined);
  for (const svc of engine.list()) await engine.delete(svc.id, { force: true }).catch(() => undefined);
  await engine.close();
  s.cleanup();
});

/** A running container made straight through the target, annotated as `owner`'s service `serviceId`. */
async function labelled(owner: string, serviceId: string, legacy = false): Promise<ServiceController> {
  const ctx = testTargetContext(join(s.dir, "side"), serviceId, { owner });
  const c = await sideFactory.create(serviceId, sideFactory.validate({ rootfs: s.rootfs, args: ["sleep", "600"] }), ctx);
  made.push(c);
  await c.prepare();
  if (legacy) {
    // As earlier versions wrote it: the service under "org.vmctl.service".
    const file = join(ctx.serviceDir, "bundle", "config.json");
    const config = JSON.parse(readFileSync(file, "utf8")) as { annotations: Record<string, string> };
    delete config.annotations[SERVICE_LABEL];
    config.annotations[LEGACY_SERVICE_ANNOTATION] = serviceId;
    writeFileSync(file, JSON.stringify(config));
  }
  await c.start();
  return c;
}

/** The container's status under the engine's runc root, or undefined when runc does not know it. */
function runcStatus(id: string): string | undefined {
  try {
    const out = execFileSync(runc, ["--root", join(engineState, "targets", "oci", "runc"), "state", id], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    return (JSON.parse(out) as { status: string }).status;
  } catch {
    return undefined;
  }
}

test("prune deletes the orphans (also one annotated as earlier versions did), keeps the live service and another owner's; a dry run deletes nothing", async (t) => {
  const live = await engine.create({ target: "oci", spec: { rootfs: s.rootfs, args: ["sleep", "600"] }, start: true });
  const liveContainer = containerIdFor(live.id);
  t.is(runcStatus(liveContainer), "running");
  await labelled(engine.instanceId, "00000000deadbeef");
  await labelled(engine.instanceId, "00000000000001d0", true);
  await labelled("oci-tests-other-owner", "00000000feedface");
  const orphans: [string, string] = [containerIdFor("00000000deadbeef"), containerIdFor("00000000000001d0")];
  const foreign = containerIdFor("00000000feedface");

  const expected = (removed: boolean) => [
    { target: "oci", kind: "runc-container", id: orphans[1], serviceId: "00000000000001d0", removed },
    { target: "oci", kind: "runc-container", id: orphans[0], serviceId: "00000000deadbeef", removed },
  ];
  const byId = (a: { id: string }, b: { id: string }) => a.id.localeCompare(b.id);

  const dry = await engine.prune({ dryRun: true });
  t.deepEqual(dry.failures, []);
  t.deepEqual([...dry.things].sort(byId), expected(false).sort(byId));
  for (const id of orphans) t.is(runcStatus(id), "running", `a dry run deleted ${id}`);

  const report = await engine.prune();
  t.deepEqual(report.failures, []);
  t.deepEqual([...report.things].sort(byId), expected(true).sort(byId));
  for (const id of orphans) t.is(runcStatus(id), undefined, `${id} is still there`);
  t.is(runcStatus(liveContainer), "running", "the live service's container was touched");
  t.is(engine.get(live.id).phase, "running");
  t.is(runcStatus(foreign), "running", "another owner's container was touched");
  t.deepEqual((await engine.prune()).things, []);
});

test("owned() lists only the owner's containers; removeOwned is idempotent", async (t) => {
  const owner = "oci-tests-list";
  await labelled(owner, "0000000000000a01");
  await labelled(`${owner}-not`, "0000000000000a02");
  const listed = await sideFactory.owned(owner);
  t.deepEqual(listed, [{ kind: "runc-container", id: containerIdFor("0000000000000a01"), owner, serviceId: "0000000000000a01", data: { runtime: "runc" } }]);
  await sideFactory.removeOwned(listed[0]!);
  await sideFactory.removeOwned(listed[0]!);
  t.deepEqual(await sideFactory.owned(owner), []);
  t.is(runcStatus(containerIdFor("0000000000000a02")), "running");
});
