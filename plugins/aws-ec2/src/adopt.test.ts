// adopt() after a simulated orchestrator restart: a new factory, the persisted record and
// the ledger the old one left — including a crash between RunInstances and the ledger update.
import test from "ava";
import type { ControllerRecord, JsonValue } from "@vmctl/core/contract";
import type { Ec2Controller } from "./controller.js";
import type { Ec2Spec } from "./spec.js";
import { ec2TestBed, type TestContext } from "./testing/context.js";

const bed = await ec2TestBed("vmctl-ec2-adopt-");
test.after.always(() => bed.close());

let seq = 0;
async function before(t: import("ava").ExecutionContext, script: string) {
  const factory = bed.factory();
  const id = `a${++seq}`;
  const ctx = bed.context(id);
  const spec = factory.validate({ imageId: bed.imageId, args: ["sh", "-c", script] });
  const c = (await factory.create(id, spec, ctx)) as Ec2Controller;
  t.teardown(() => c.destroy());
  return { id, ctx, c, spec };
}

async function restart(t: import("ava").ExecutionContext, id: string, spec: Ec2Spec, ctx: TestContext, data: JsonValue | undefined) {
  const factory = bed.factory();
  const fresh = bed.context(id, ctx.resources.list());
  const record: ControllerRecord = { id, target: "aws-ec2", spec, ...(data === undefined ? {} : { data }), resources: fresh.resources.list() };
  const c = (await factory.adopt(record, fresh)) as Ec2Controller | undefined;
  if (c) t.teardown(() => c.destroy());
  return { c, ctx: fresh };
}

test("a running service is adopted by a new factory, follows on, stops with reason stopped, and is destroyed", async (t) => {
  const { id, ctx, c, spec } = await before(t, "echo alive; while :; do sleep 0.05; done");
  await c.start();
  const a = await restart(t, id, spec, ctx, c.record());
  t.truthy(a.c);
  t.is(a.c!.instanceId, c.instanceId);
  const deadline = Date.now() + 10_000;
  while ((await a.c!.state()).phase !== "running" && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  t.is((await a.c!.state()).phase, "running");
  await a.c!.stop({ timeoutMs: 2000 });
  t.is((await a.c!.wait()).reason, "stopped");
  // The original controller (another "process") reads the same facts from EC2's tags.
  t.is((await c.wait()).reason, "stopped");
  await a.c!.destroy();
  t.deepEqual(await bed.liveInstances(id), []);
  t.deepEqual(await bed.objects(`vmctl/${id}/`), []);
  t.deepEqual(a.ctx.resources.list(), []);
});

test("an exited service is adopted with its exit code", async (t) => {
  const { id, ctx, c, spec } = await before(t, "exit 9");
  await c.start();
  t.is((await c.wait()).code, 9);
  const a = await restart(t, id, spec, ctx, c.record());
  const exit = await a.c!.wait();
  t.is(exit.code, 9);
  t.is(exit.reason, "exited");
});

test("a crash after RunInstances but before the ledger got the instance id: adopt finds it by tag", async (t) => {
  const { id, ctx, c, spec } = await before(t, "echo found; while :; do sleep 0.05; done");
  await c.start();
  // The ledger as a crash would leave it: the intent, without the instance id; no record data.
  const intent = ctx.resources.history().find((r) => r.kind === "ec2-instance")!;
  const crashed = bed.context(id, [ctx.resources.list().find((r) => r.kind === "s3-prefix")!, intent]);
  const a = await restart(t, id, spec, crashed, undefined);
  t.truthy(a.c);
  t.is((await a.c!.state()).instance, c.instanceId);
  t.is(a.c!.instanceId, c.instanceId);
  // And start() on it makes no second instance.
  await a.c!.start();
  t.deepEqual(await bed.liveInstances(id), [c.instanceId!]);
  await a.c!.destroy();
  t.deepEqual(await bed.liveInstances(id), []);
  t.deepEqual(a.ctx.resources.list(), []);
});

test("nothing recorded and nothing tagged: adopt returns undefined", async (t) => {
  const factory = bed.factory();
  const ctx = bed.context("a-none");
  const record: ControllerRecord = { id: "a-none", target: "aws-ec2", spec: { imageId: bed.imageId, args: ["true"] }, resources: [] };
  t.is(await factory.adopt(record, ctx), undefined);
});
