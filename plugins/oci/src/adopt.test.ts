// adopt() after a simulated orchestrator restart: a new factory over the same state dir,
// handed the record and the ledger the old one left behind.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import test from "ava";
import type { ControllerRecord, JsonValue, OwnedResource } from "@vmctl/core/contract";
import type { OciController } from "./controller.js";
import { containerIdFor, ledger, serviceLayout } from "./layout.js";
import type { OciSpec } from "./spec.js";
import { runcList, scratch, testContext, type TestContext } from "./testing/context.js";
import { collectLogs, processesMentioning, untilStdout } from "@vmctl/plugin-conformance";

const s = scratch("vmctl-oci-adopt-");
test.after.always(() => s.cleanup());

let seq = 0;

interface Before {
  readonly id: string;
  readonly spec: OciSpec;
  readonly ctx: TestContext;
  readonly c: OciController;
}

async function before(t: import("ava").ExecutionContext, spec: Omit<OciSpec, "rootfs">): Promise<Before> {
  const factory = s.factory();
  const id = `a${++seq}-${process.pid}`;
  const ctx = testContext(s.dir, id);
  const valid = factory.validate({ rootfs: s.rootfs, ...spec });
  const c = await factory.create(id, valid, ctx);
  t.teardown(() => c.destroy());
  return { id, spec: valid, ctx, c };
}

/** What a restarted orchestrator has: a fresh factory, the persisted record, the durable ledger. */
async function restart(t: import("ava").ExecutionContext, b: Before, data: JsonValue | undefined = b.c.record()) {
  const factory = s.factory();
  const ctx = testContext(s.dir, b.id, b.ctx.resources.list());
  const record: ControllerRecord = {
    id: b.id,
    target: "oci",
    spec: b.spec,
    ...(data === undefined ? {} : { data }),
    resources: ctx.resources.list(),
  };
  const c = await factory.adopt(record, ctx);
  if (c) t.teardown(() => c.destroy());
  return { c, ctx };
}

function sh(script: string): string[] {
  return ["sh", "-c", script];
}

test("adopt reattaches to a running container and later sees its exit code", async (t) => {
  const signal = join(s.dir, `signal-${seq}`);
  mkdirSync(signal, { recursive: true });
  const b = await before(t, {
    args: sh("echo ready; while [ ! -e /signal/go ]; do sleep 0.05; done; echo finishing; exit 5"),
    mounts: [{ source: signal, destination: "/signal", readOnly: true }],
  });
  await b.c.start();
  await untilStdout(b.c, "ready");
  const pid = (await b.c.state()).pid;

  const { c, ctx } = await restart(t, b);
  t.truthy(c);
  const state = await c!.state();
  t.is(state.phase, "running");
  t.is(state.pid, pid);
  t.is(state.instance, containerIdFor(b.id));

  writeFileSync(join(signal, "go"), "");
  const exit = await c!.wait();
  t.is(exit.code, 5);
  t.is(exit.reason, "exited");
  t.is((await collectLogs(c!)).stdout, "ready\nfinishing\n");

  await c!.destroy();
  t.false(runcList(s).includes(containerIdFor(b.id)));
  t.deepEqual(processesMentioning(containerIdFor(b.id)), []);
  t.deepEqual(ctx.resources.list(), []);
  t.deepEqual(readdirSync(ctx.serviceDir), []);
});

test("adopt can stop a running container it did not start", async (t) => {
  const b = await before(t, { args: sh('trap "exit 0" TERM; echo ready; while true; do sleep 0.05; done') });
  await b.c.start();
  await untilStdout(b.c, "ready");
  const { c } = await restart(t, b);
  await c!.stop({ timeoutMs: 20_000 });
  t.deepEqual((await c!.wait()).code, 0);
  t.is((await c!.wait()).reason, "stopped");
});

test("adopt of a container that exited while no one watched reports its exit", async (t) => {
  const b = await before(t, { args: sh("echo bye; exit 3") });
  await b.c.start();
  await b.c.wait();
  const { c } = await restart(t, b);
  const state = await c!.state();
  t.is(state.phase, "exited");
  t.is(state.exit?.code, 3);
  t.is((await collectLogs(c!)).stdout, "bye\n");
});

test("adopt without a record's data still works from the ledger and files", async (t) => {
  const b = await before(t, { args: sh("exit 9") });
  await b.c.start();
  await b.c.wait();
  const { c } = await restart(t, b, undefined);
  t.is((await c!.wait()).code, 9);
});

test("adopt of a service that was only prepared: created, and destroy cleans its files", async (t) => {
  const b = await before(t, { args: sh("echo never") });
  await b.c.prepare();
  const { c, ctx } = await restart(t, b);
  t.is((await c!.state()).phase, "created");
  await c!.destroy();
  t.deepEqual(readdirSync(ctx.serviceDir), []);
  t.deepEqual(ctx.resources.list(), []);
});

test("adopt of a start that never happened (crash between ledger and spawn): lost, and destroy cleans up", async (t) => {
  const b = await before(t, { args: sh("echo never") });
  await b.c.prepare();
  const layout = serviceLayout(b.ctx.serviceDir);
  const intended: OwnedResource[] = [
    ledger.container("runc", containerIdFor(b.id), join(s.stateDir, "runc")),
    ledger.shim(containerIdFor(b.id), layout.shimPidFile),
  ];
  for (const r of intended) b.ctx.resources.intend(r);
  const { c, ctx } = await restart(t, b);
  const exit = await c!.wait();
  t.is(exit.reason, "lost");
  t.is(exit.code, null);
  await c!.destroy();
  t.deepEqual(ctx.resources.list(), []);
  t.false(existsSync(layout.bundleDir));
});

test("adopt with nothing left returns undefined", async (t) => {
  const b = await before(t, { args: sh("true") });
  const { c } = await restart(t, b);
  t.is(c, undefined);
});

test("kill -9 of the orchestrator process: the container keeps running and is adopted", async (t) => {
  const id = `crash${++seq}-${process.pid}`;
  const ctx0 = testContext(s.dir, id);
  const signal = join(s.dir, `signal-${id}`);
  mkdirSync(signal, { recursive: true });
  const spec = {
    rootfs: s.rootfs,
    args: sh("echo ready; while [ ! -e /signal/go ]; do sleep 0.05; done; exit 6"),
    mounts: [{ source: signal, destination: "/signal", readOnly: true }],
  };
  const child = spawn(
    process.execPath,
    ["--import=tsx", fileURLToPath(new URL("./testing/crash-child.ts", import.meta.url)), s.stateDir, ctx0.serviceDir, id, JSON.stringify(spec)],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const exited = new Promise((resolve) => child.once("exit", resolve));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once("line", resolve);
    child.once("exit", (code) => reject(new Error(`crash child exited with ${code} before starting`)));
  });
  child.kill("SIGKILL");
  await exited;
  const persisted = JSON.parse(line) as { resources: OwnedResource[]; data: JsonValue };

  const factory = s.factory();
  const ctx = testContext(s.dir, id, persisted.resources);
  const c = await factory.adopt(
    { id, target: "oci", spec: factory.validate(spec), data: persisted.data, resources: persisted.resources },
    ctx,
  );
  t.truthy(c);
  t.teardown(() => c?.destroy());
  t.is((await c!.state()).phase, "running");
  writeFileSync(join(signal, "go"), "");
  t.is((await c!.wait()).code, 6);
  await c!.destroy();
  t.deepEqual(processesMentioning(containerIdFor(id)), []);
  t.deepEqual(ctx.resources.list(), []);
});
