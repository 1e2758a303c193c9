// The controller against moto + the instance simulator: what EC2 and S3 see at each step
// (tags, ledger, user data, objects), stdout/stderr apart, follow, stop reasons, and
// destroy leaving nothing behind.
import test from "ava";
import { DescribeInstanceAttributeCommand, DescribeInstancesCommand } from "@aws-sdk/client-ec2";
import type { LogChunk, ServiceController } from "@vmctl/core/contract";
import type { Ec2Controller } from "./controller.js";
import { ec2TestBed, TEST_OWNER } from "./testing/context.js";

const bed = await ec2TestBed("vmctl-ec2-controller-");
test.after.always(() => bed.close());

let seq = 0;
async function service(t: import("ava").ExecutionContext, script: string, extra: Record<string, unknown> = {}) {
  const factory = bed.factory();
  const id = `c${++seq}`;
  const ctx = bed.context(id);
  const c = (await factory.create(id, factory.validate({ imageId: bed.imageId, args: ["sh", "-c", script], ...extra }), ctx)) as Ec2Controller;
  t.teardown(() => c.destroy());
  return { id, ctx, c };
}

async function output(c: ServiceController): Promise<{ stdout: string; stderr: string }> {
  const out = { stdout: "", stderr: "" };
  for await (const chunk of c.logs() as AsyncIterable<LogChunk>) if (chunk.stream !== "console") out[chunk.stream] += Buffer.from(chunk.data).toString();
  return out;
}

async function until(what: string, check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

test("a run: tagged instance, ledger before and after, env and output streams, exit code, then nothing left", async (t) => {
  const { id, ctx, c } = await service(t, 'echo "out $WHO"; echo "err line" >&2; exit 3', { env: { WHO: "it's me" } });
  t.is((await c.state()).phase, "created");
  await c.start();
  await c.start(); // idempotent
  const instanceId = c.instanceId!;
  t.truthy(instanceId);
  // The intent (by client token) was recorded first, then updated with the instance id.
  const history = ctx.resources.history().filter((r) => r.kind === "ec2-instance");
  t.is(history[0]!.key, history.at(-1)!.key);
  t.is((history[0]!.data as { instanceId?: string }).instanceId, undefined);
  t.is((history.at(-1)!.data as { instanceId?: string }).instanceId, instanceId);
  t.true(ctx.resources.list().some((r) => r.kind === "s3-prefix" && r.key === `s3://${bed.bucket}/vmctl/${id}/`));

  const described = await bed.ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }));
  const instance = described.Reservations![0]!.Instances![0]!;
  const tags = Object.fromEntries((instance.Tags ?? []).map((x) => [x.Key, x.Value]));
  t.is(tags["vmctl.io/owner"], TEST_OWNER);
  t.is(tags["vmctl.io/service"], id);
  t.is(tags.Name, `vmctl-${id}`);
  t.is(instance.InstanceType, "t3.micro");
  t.regex(instance.ClientToken ?? "", /^vmctl-[0-9a-f]{40}$/);
  const behavior = await bed.ec2.send(new DescribeInstanceAttributeCommand({ InstanceId: instanceId, Attribute: "instanceInitiatedShutdownBehavior" }));
  t.is(behavior.InstanceInitiatedShutdownBehavior?.Value, "stop");

  const exit = await c.wait();
  t.is(exit.code, 3);
  t.is(exit.reason, "exited");
  t.deepEqual(await output(c), { stdout: "out it's me\n", stderr: "err line\n" });
  // The guest powered itself off: the instance stops (instance-initiated shutdown).
  await until("the instance to stop", async () => {
    const d = await bed.ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }));
    return d.Reservations![0]!.Instances![0]!.State?.Name === "stopped";
  });
  t.deepEqual((await bed.objects(`vmctl/${id}/`)).sort(), [`vmctl/${id}/exit`, `vmctl/${id}/stderr`, `vmctl/${id}/stdout`]);

  await c.destroy();
  await c.destroy();
  t.deepEqual(await bed.liveInstances(id), []);
  t.deepEqual(await bed.objects(`vmctl/${id}/`), []);
  t.deepEqual(ctx.resources.list(), []);
  t.is((await c.state()).exit?.code, 3, "the exit is remembered after destroy");
});

test("follow yields only new bytes, keeps going while running, ends after the exit", async (t) => {
  const { c } = await service(t, "i=0; while [ $i -lt 6 ]; do echo line$i; i=$((i+1)); sleep 0.15; done");
  await c.start();
  let text = "";
  let chunks = 0;
  for await (const chunk of c.logs({ follow: true })) {
    text += Buffer.from(chunk.data).toString();
    chunks += 1;
  }
  t.is(text, "line0\nline1\nline2\nline3\nline4\nline5\n", "no byte twice, none lost");
  t.true(chunks > 1, `output arrived in ${chunks} chunk(s) while running`);
  t.is((await c.state()).exit?.code, 0);
});

test("a polite stop: the command gets SIGTERM, its exit is reported, reason stopped", async (t) => {
  const { c } = await service(t, "trap 'echo bye; exit 5' TERM; echo ready; while :; do sleep 0.05; done");
  await c.start();
  await until("ready", async () => (await output(c)).stdout.includes("ready"));
  await c.stop({ timeoutMs: 5000 });
  const exit = await c.wait();
  t.is(exit.reason, "stopped");
  t.is(exit.code, 5);
  t.is((await output(c)).stdout, "ready\nbye\n");
  const d = await bed.ec2.send(new DescribeInstancesCommand({ InstanceIds: [c.instanceId!] }));
  const tags = d.Reservations![0]!.Instances![0]!.Tags ?? [];
  t.true(tags.some((x) => x.Key === "vmctl.io/stop-requested"), "the stop is recorded on the instance");
});

test("a stop that is ignored is forced after timeoutMs", async (t) => {
  const { c } = await service(t, "trap '' TERM; echo stubborn; while :; do sleep 0.05; done");
  await c.start();
  await until("stubborn", async () => (await output(c)).stdout.includes("stubborn"));
  const started = Date.now();
  await c.stop({ timeoutMs: 300 });
  const took = Date.now() - started;
  t.true(took < 3000, `stop took ${took} ms`);
  const exit = await c.wait();
  t.is(exit.reason, "stopped");
  t.is(exit.code, null);
  t.deepEqual(bed.sim.running().filter((i) => i === c.instanceId), []);
});

test("running: the instance's addresses are reported; destroy of a running service terminates it", async (t) => {
  const { id, ctx, c } = await service(t, "echo up; while :; do sleep 0.05; done");
  await c.start();
  await until("running", async () => (await c.state()).phase === "running");
  const state = await c.state();
  t.is(state.instance, c.instanceId);
  t.true((state.addresses ?? []).some((a) => /^\d+\.\d+\.\d+\.\d+$/.test(a)), JSON.stringify(state.addresses));
  await c.destroy();
  t.deepEqual(await bed.liveInstances(id), []);
  t.deepEqual(bed.sim.running().filter((i) => i === c.instanceId), [], "the guest is gone once destroy returns");
  t.deepEqual(await bed.objects(`vmctl/${id}/`), []);
  t.deepEqual(ctx.resources.list(), []);
});

test("stop before start: exited, stopped, and start then makes nothing", async (t) => {
  const { id, ctx, c } = await service(t, "echo never");
  await c.stop();
  t.is((await c.state()).exit?.reason, "stopped");
  await c.start();
  t.is(c.instanceId, undefined);
  t.deepEqual(await bed.liveInstances(id), []);
  await c.destroy();
  t.deepEqual(ctx.resources.list(), []);
});

test("shutdownBehavior terminate: the guest's poweroff terminates the instance", async (t) => {
  const { c } = await service(t, "echo done", { shutdownBehavior: "terminate" });
  await c.start();
  t.is((await c.wait()).code, 0);
  await until("termination", async () => {
    const d = await bed.ec2.send(new DescribeInstancesCommand({ InstanceIds: [c.instanceId!] }));
    return d.Reservations![0]!.Instances![0]!.State?.Name === "terminated";
  });
  t.is((await c.state()).exit?.code, 0);
});

test.after.always("the simulator itself had no failures", (t) => {
  t.deepEqual(bed.sim.errors, []);
});
