// Reaping on a real Docker daemon, through a real orchestrator: `prune` removes a
// container carrying the orchestrator's owner label whose service the store does not
// know, keeps the live service's, never touches another owner's; a dry run removes nothing.
import { join } from "node:path";
import test from "ava";
import { Orchestrator, silentLogger, type PluginRegistration } from "@vmctl/core";
import { OWNER_LABEL, SERVICE_LABEL, type ServiceController } from "@vmctl/core/contract";
import { initDocker } from "./index.js";
import { CONTAINER_KIND } from "./naming.js";
import { client, scratch } from "./testing/context.js";
import { sh } from "./testing/helpers.js";

const s = await scratch("vmctl-docker-owned-");
const docker = client(s.socket);
const registration: PluginRegistration = { name: "vmctl-plugin-docker", targets: [{ target: "docker", init: (env) => initDocker(env) }] };
const engine = await Orchestrator.open({
  stateDir: join(s.dir, "vmctld"),
  plugins: [registration],
  targetOptions: { docker: { socket: s.socket } },
  log: silentLogger,
});
const made: ServiceController[] = [];

test.after.always(async () => {
  for (const c of made) await c.destroy().catch(() => undefined);
  for (const svc of engine.list()) await engine.delete(svc.id, { force: true }).catch(() => undefined);
  await engine.close();
  await s.cleanup();
});

/** A running container made straight through the target, labelled as `owner`'s service `serviceId`. */
async function labelled(owner: string, serviceId: string): Promise<ServiceController> {
  const factory = s.factory();
  const ctx = { ...s.context(serviceId), ownerLabels: { [OWNER_LABEL]: owner, [SERVICE_LABEL]: serviceId } };
  const c = await factory.create(serviceId, factory.validate({ image: s.image, args: sh("sleep 600") }), ctx);
  made.push(c);
  await c.prepare();
  await c.start();
  return c;
}

async function running(id: string): Promise<boolean> {
  const info = await docker.getContainer(id).inspect().catch(() => undefined);
  return info?.State.Running === true;
}

test("prune removes the orphan, keeps the live service and another owner's container; a dry run removes nothing", async (t) => {
  const live = await engine.create({ target: "docker", spec: { image: s.image, args: sh("sleep 600") }, start: true });
  const liveContainer = live.instance ?? "";
  t.true(await running(liveContainer));
  const orphan = await labelled(engine.instanceId, "00000000deadbeef");
  const orphanId = (await orphan.state()).instance ?? "";
  const foreign = await labelled(`${s.owner}-other`, "00000000feedface");
  const foreignId = (await foreign.state()).instance ?? "";

  const dry = await engine.prune({ dryRun: true });
  t.true(dry.dryRun);
  t.deepEqual(dry.failures, []);
  const orphanFull = (await docker.getContainer(orphanId).inspect()).Id;
  t.deepEqual(
    dry.things.map((x) => ({ ...x })),
    [{ target: "docker", kind: CONTAINER_KIND, id: orphanFull, serviceId: "00000000deadbeef", removed: false }],
  );
  t.true(await running(orphanId), "a dry run removed the orphan");

  const report = await engine.prune();
  t.deepEqual(report.things, [{ target: "docker", kind: CONTAINER_KIND, id: orphanFull, serviceId: "00000000deadbeef", removed: true }]);
  await t.throwsAsync(docker.getContainer(orphanId).inspect(), undefined, "the orphan is still there");
  t.true(await running(liveContainer), "the live service's container was touched");
  t.is(engine.get(live.id).phase, "running");
  t.true(await running(foreignId), "another owner's container was touched");

  t.deepEqual((await engine.prune()).things, [], "a second prune finds nothing");
});

test("owned() lists only the owner's containers, each with its service; removeOwned of one gone is fine", async (t) => {
  const owner = `${s.owner}-list`;
  const a = await labelled(owner, "0000000000000a01");
  await labelled(`${owner}-not`, "0000000000000a02");
  const factory = s.factory();
  const listed = await factory.owned(owner);
  t.deepEqual(
    listed.map((x) => [x.kind, x.serviceId, x.owner]),
    [[CONTAINER_KIND, "0000000000000a01", owner]],
  );
  const [thing] = listed;
  if (!thing) return;
  await factory.removeOwned(thing);
  await factory.removeOwned(thing);
  t.deepEqual(await factory.owned(owner), []);
  t.is((await a.state()).phase, "exited");
});
