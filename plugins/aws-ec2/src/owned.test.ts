// Reaping against moto (the simulator playing the guests), through a real orchestrator:
// `prune` terminates the instances tagged with the orchestrator's owner whose service
// the store does not know, keeps the live service's, never touches another owner's,
// ignores terminated ones; a dry run terminates nothing.
import { DescribeInstancesCommand } from "@aws-sdk/client-ec2";
import { join } from "node:path";
import test from "ava";
import { Orchestrator, silentLogger, type PluginRegistration } from "@vmctl/core";
import type { ServiceController } from "@vmctl/core/contract";
import { testTargetContext } from "@vmctl/plugin-conformance";
import type { Ec2Controller } from "./controller.js";
import { initAwsEc2 } from "./index.js";
import { INSTANCE_KIND } from "./naming.js";
import { ec2TestBed, fastOptions } from "./testing/context.js";

const bed = await ec2TestBed("vmctl-ec2-owned-");
const registration: PluginRegistration = { name: "vmctl-plugin-aws-ec2", targets: [{ target: "aws-ec2", init: (env) => initAwsEc2(env) }] };
const engine = await Orchestrator.open({
  stateDir: join(bed.dir, "vmctld"),
  plugins: [registration],
  targetOptions: { "aws-ec2": fastOptions(bed.sim.endpoint, bed.bucket) },
  log: silentLogger,
});
const made: ServiceController[] = [];
const LOOP = ["sh", "-c", "while :; do sleep 0.05; done"];

test.after.always(async () => {
  for (const c of made) await c.destroy().catch(() => undefined);
  for (const svc of engine.list()) await engine.delete(svc.id, { force: true }).catch(() => undefined);
  await engine.close();
  await bed.close();
});

/** A started instance made straight through the target, tagged as `owner`'s service `serviceId`. */
async function tagged(owner: string, serviceId: string): Promise<Ec2Controller> {
  const factory = bed.factory();
  const ctx = testTargetContext(join(bed.dir, "side"), serviceId, { owner });
  const c = (await factory.create(serviceId, factory.validate({ imageId: bed.imageId, args: LOOP }), ctx)) as Ec2Controller;
  made.push(c);
  await c.start();
  return c;
}

async function stateOf(instanceId: string | undefined): Promise<string | undefined> {
  const out = await bed.ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId ?? ""] }));
  return out.Reservations?.[0]?.Instances?.[0]?.State?.Name;
}

test("prune terminates the orphan, keeps the live service's and another owner's instance, ignores terminated ones; a dry run terminates nothing", async (t) => {
  const live = await engine.create({ target: "aws-ec2", spec: { imageId: bed.imageId, args: LOOP }, start: true });
  const orphan = await tagged(engine.instanceId, "00000000deadbeef");
  const foreign = await tagged("aws-ec2-tests-other-owner", "00000000feedface");
  const done = await tagged(engine.instanceId, "00000000000000d0");
  await done.destroy();
  t.is(await stateOf(done.instanceId), "terminated");

  const dry = await engine.prune({ dryRun: true });
  t.deepEqual(dry.failures, []);
  t.deepEqual(dry.things, [{ target: "aws-ec2", kind: INSTANCE_KIND, id: orphan.instanceId, serviceId: "00000000deadbeef", removed: false }]);
  t.is(await stateOf(orphan.instanceId), "running", "a dry run terminated the orphan");

  const report = await engine.prune();
  t.deepEqual(report.things, [{ target: "aws-ec2", kind: INSTANCE_KIND, id: orphan.instanceId, serviceId: "00000000deadbeef", removed: true }]);
  t.true(["shutting-down", "terminated"].includes((await stateOf(orphan.instanceId)) ?? ""), "the orphan is not terminated");
  t.is(await stateOf(live.instance), "running", "the live service's instance was touched");
  t.is(await stateOf(foreign.instanceId), "running", "another owner's instance was touched");
  t.deepEqual((await engine.prune()).things, [], "a terminated orphan is not listed again");
});

test("owned() lists only the owner's instances, with their service; removeOwned is idempotent", async (t) => {
  const owner = "aws-ec2-tests-list";
  const a = await tagged(owner, "0000000000000a01");
  const b = await tagged(`${owner}-not`, "0000000000000a02");
  const factory = bed.factory();
  const listed = await factory.owned(owner);
  t.deepEqual(
    listed.map((x) => ({ kind: x.kind, id: x.id, owner: x.owner, serviceId: x.serviceId })),
    [{ kind: INSTANCE_KIND, id: a.instanceId, owner, serviceId: "0000000000000a01" }],
  );
  await factory.removeOwned(listed[0]!);
  await factory.removeOwned(listed[0]!);
  t.deepEqual(await factory.owned(owner), []);
  t.is(await stateOf(b.instanceId), "running");
});

test("a target never configured and never used asks AWS nothing", async (t) => {
  const factory = initAwsEc2({ stateDir: join(bed.dir, "unconfigured"), options: {}, log: silentLogger });
  try {
    t.deepEqual(await factory.owned(engine.instanceId), []);
  } finally {
    await factory.close();
  }
});
