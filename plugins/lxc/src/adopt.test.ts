// adopt() after a simulated orchestrator restart: a new factory over the same state dir,
// handed the record and the ledger the old one left behind.
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import test from "ava";
import { execToEnd } from "@vmctl/core/target-kit";
import type { ControllerRecord, JsonValue, OwnedResource } from "@vmctl/core/contract";
import type { LxcController } from "./controller.js";
import { containerNameFor, ledger, serviceLayout } from "./layout.js";
import type { LxcSpec } from "./spec.js";
import { lxcLs, lxcpathEntries, scratch, testContext, type TestContext } from "./testing/context.js";
import { collectLogs, processesMentioning, untilStdout } from "@vmctl/plugin-conformance";

const s = scratch("vmctl-lxc-adopt-");
test.after.always(() => s.cleanup());

let seq = 0;

interface Before {
  readonly id: string;
  readonly spec: LxcSpec;
  readonly ctx: TestContext;
  readonly c: LxcController;
}

async function before(t: import("ava").ExecutionContext, spec: Omit<LxcSpec, "rootfs">): Promise<Before> {
  const factory = s.factory();
  const id = `a${++seq}-${process.pid}`;
  const ctx = testContext(s.dir, id);
  const valid = factory.validate(spec.template === undefined ? { rootfs: s.rootfs, ...spec } : spec);
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
    target: "lxc",
    spec: JSON.parse(JSON.stringify(b.spec)) as JsonValue,
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
  t.is(state.instance, containerNameFor(b.id));

  writeFileSync(join(signal, "go"), "");
  const exit = await c!.wait();
  t.deepEqual({ code: exit.code, reason: exit.reason }, { code: 5, reason: "exited" });
  t.is((await collectLogs(c!)).stdout, "ready\nfinishing\n");

  await c!.destroy();
  t.false(lxcpathEntries(s.lxcpath).includes(containerNameFor(b.id)));
  t.deepEqual(processesMentioning(containerNameFor(b.id)), []);
  t.deepEqual(ctx.resources.list(), []);
  t.deepEqual(readdirSync(ctx.serviceDir), []);
});

test("adopt can stop (gracefully), exec in and pause a running container it did not start", async (t) => {
  const b = await before(t, { args: sh('trap "exit 0" TERM; echo ready; while true; do sleep 0.05; done') });
  await b.c.start();
  await untilStdout(b.c, "ready");
  const { c } = await restart(t, b);
  const r = await execToEnd(await c!.exec({ args: sh("echo in-adopted") }));
  t.is(Buffer.from(r.stdout).toString(), "in-adopted\n");
  await c!.pause();
  t.is((await c!.state()).phase, "paused");
  await c!.resume();
  await c!.stop({ timeoutMs: 20_000 });
  const exit = await c!.wait();
  t.deepEqual({ code: exit.code, reason: exit.reason }, { code: 0, reason: "stopped" });
});

test("adopt of a paused container says paused, and can resume it", async (t) => {
  const b = await before(t, { args: sh("while :; do echo tick; sleep 0.05; done") });
  await b.c.start();
  await untilStdout(b.c, "tick");
  await b.c.pause();
  const { c } = await restart(t, b);
  t.is((await c!.state()).phase, "paused");
  await c!.resume();
  t.is((await c!.state()).phase, "running");
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

test("adopt of a stop that was under way: the exit still reads stopped", async (t) => {
  const b = await before(t, { args: sh("echo ready; exec sleep 1000") });
  await b.c.start();
  await untilStdout(b.c, "ready");
  await b.c.stop({ timeoutMs: 5000 });
  const { c } = await restart(t, b);
  const exit = await c!.wait();
  t.deepEqual({ signal: exit.signal, reason: exit.reason }, { signal: "SIGTERM", reason: "stopped" });
});

test("adopt without a record's data still works from the ledger and files", async (t) => {
  const b = await before(t, { args: sh("exit 9") });
  await b.c.start();
  await b.c.wait();
  const { c } = await restart(t, b, undefined);
  t.is((await c!.wait()).code, 9);
});

test("adopt of a service that was only prepared: created, and destroy cleans its files and container dir", async (t) => {
  const b = await before(t, { args: sh("echo never") });
  await b.c.prepare();
  const { c, ctx } = await restart(t, b);
  t.is((await c!.state()).phase, "created");
  await c!.destroy();
  t.deepEqual(readdirSync(ctx.serviceDir), []);
  t.deepEqual(ctx.resources.list(), []);
  t.false(lxcpathEntries(s.lxcpath).includes(containerNameFor(b.id)));
});

test("adopt of a template service whose template was uninstalled meanwhile can still be destroyed", async (t) => {
  const b = await before(t, { template: "busybox", args: sh("exit 2") });
  await b.c.start();
  await b.c.wait();
  const factory = s.factory();
  const ctx = testContext(s.dir, b.id, b.ctx.resources.list());
  const spec = { ...b.spec, template: "uninstalled-now" };
  const c = await factory.adopt({ id: b.id, target: "lxc", spec, data: b.c.record(), resources: ctx.resources.list() }, ctx);
  t.is((await c!.wait()).code, 2);
  await c!.destroy();
  t.false(existsSync(join(s.lxcpath, containerNameFor(b.id))));
  t.deepEqual(ctx.resources.list(), []);
});

test("adopt of a start that never happened (crash between ledger and spawn): lost, and destroy cleans up", async (t) => {
  const b = await before(t, { args: sh("echo never") });
  await b.c.prepare();
  const layout = serviceLayout(b.ctx.serviceDir);
  const intended: OwnedResource[] = [ledger.shim(containerNameFor(b.id), layout.shimPidFile)];
  for (const r of intended) b.ctx.resources.intend(r);
  const { c, ctx } = await restart(t, b);
  const exit = await c!.wait();
  t.deepEqual({ reason: exit.reason, code: exit.code }, { reason: "lost", code: null });
  await c!.destroy();
  t.deepEqual(ctx.resources.list(), []);
  t.false(lxcpathEntries(s.lxcpath).includes(containerNameFor(b.id)));
});

test("adopt after the shim was killed: the container is reported lost, and destroy still kills it", async (t) => {
  const b = await before(t, { args: sh("echo ready; exec sleep 1000") });
  await b.c.start();
  await untilStdout(b.c, "ready");
  const init = (await b.c.state()).pid!;
  const shim = b.ctx.resources.list().find((r) => r.kind === "process")?.data as { pid: number };
  process.kill(shim.pid, "SIGKILL");
  const { c } = await restart(t, b);
  t.is((await c!.wait()).reason, "lost");
  t.true(existsSync(`/proc/${init}`), "the container outlives its shim");
  await c!.destroy();
  t.false(lxcLs(s.lxcpath).includes(containerNameFor(b.id)));
  for (let i = 0; i < 50 && existsSync(`/proc/${init}`); i++) await new Promise((r) => setTimeout(r, 20));
  t.false(existsSync(`/proc/${init}`));
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
  const c = await factory.adopt({ id, target: "lxc", spec: factory.validate(spec), data: persisted.data, resources: persisted.resources }, ctx);
  t.truthy(c);
  t.teardown(() => c?.destroy());
  t.is((await c!.state()).phase, "running");
  writeFileSync(join(signal, "go"), "");
  t.is((await c!.wait()).code, 6);
  await c!.destroy();
  t.deepEqual(processesMentioning(containerNameFor(id)), []);
  t.deepEqual(ctx.resources.list(), []);
  t.false(lxcpathEntries(s.lxcpath).includes(containerNameFor(id)));
});
