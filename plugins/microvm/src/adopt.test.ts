// adopt() after a simulated orchestrator restart (the old factory closed, a new one over
// the same state dir handed the record and the ledger), and after a real kill -9.
import { spawn } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import test, { type ExecutionContext } from "ava";
import type { ControllerRecord, JsonValue, OwnedResource } from "@vmctl/core/contract";
import { VmmClient } from "@vmctl/vmm-client";
import type { MicrovmController } from "./controller.js";
import type { MicrovmFactory } from "./factory.js";
import { ledger } from "./layout.js";
import type { MicrovmSpec } from "./spec.js";
import { scratch, socketsUnder, testContext, vmmsUnder, type TestContext } from "./testing/context.js";
import { consoleText, ticks, untilConsole } from "./testing/helpers.js";
import { until } from "./testing/poll.js";
import { isAlive, spawnVmmDetached, terminate } from "./vmm-process.js";

const s = scratch("vmctl-mvm-adopt-");
test.after.always(() => s.cleanup());

let seq = 0;

interface Before {
  readonly id: string;
  readonly spec: MicrovmSpec;
  readonly ctx: TestContext;
  readonly factory: MicrovmFactory;
  readonly c: MicrovmController;
}

async function before(t: ExecutionContext, spec: unknown): Promise<Before> {
  const factory = s.factory();
  const id = `a${++seq}`;
  const ctx = testContext(s.dir, id);
  const valid = factory.validate(spec);
  const c = await factory.create(id, valid, ctx);
  t.teardown(() => c.destroy());
  return { id, spec: valid, ctx, factory, c };
}

/** What a restarted orchestrator has: a fresh factory, the persisted record, the durable ledger. */
async function restart(t: ExecutionContext, b: Before, data: JsonValue | undefined = b.c.record()) {
  await b.factory.close();
  const factory = s.factory();
  const ctx = testContext(s.dir, b.id, b.ctx.resources.list());
  const record: ControllerRecord = {
    id: b.id,
    target: "microvm",
    spec: b.spec,
    ...(data === undefined ? {} : { data }),
    resources: ctx.resources.list(),
  };
  const c = await factory.adopt(record, ctx);
  if (c) t.teardown(() => c.destroy());
  return { c, ctx, factory };
}

function assertGone(t: ExecutionContext, ctx: TestContext): void {
  t.deepEqual([...vmmsUnder(`${ctx.serviceDir}/`).keys()], [], "no VMM left");
  t.deepEqual(socketsUnder(s.dir).filter((p) => p.includes(`/${ctx.serviceId}/`)), [], "no socket left");
  t.deepEqual(readdirSync(ctx.serviceDir), [], "no per-VM files left");
  t.deepEqual(ctx.resources.list(), [], "ledger empty");
}

test("adopt reattaches to a running VM; the console continues without a repeat or a gap; stop ends it", async (t) => {
  const b = await before(t, s.guestSpec("ticker"));
  await b.c.start();
  await untilConsole(b.c, /tick=2\n/);
  const pid = (await b.c.state()).pid;

  const { c, ctx } = await restart(t, b);
  t.truthy(c);
  const state = await c!.state();
  t.is(state.phase, "running");
  t.is(state.pid, pid);
  t.is(state.instance, `vmctl-${b.id}`);
  const seenAt = ticks(await consoleText(c!)).length;
  await untilConsole(c!, new RegExp(`tick=${seenAt + 3}\\n`));

  await c!.stop({ timeoutMs: 100 });
  const exit = await c!.wait();
  t.is(exit.reason, "stopped");
  const all = ticks(await consoleText(c!, true));
  t.true(all.length > seenAt);
  t.deepEqual(all, all.map((_, i) => i), "every tick exactly once across the restart");
  await c!.destroy();
  assertGone(t, ctx);
});

test("a VM that exited while no one watched: adopt reports its exit and its console", async (t) => {
  const b = await before(t, s.guestSpec("echo"));
  await b.c.start();
  await untilConsole(b.c, /ready/);
  await b.factory.close(); // the orchestrator goes away; the VM runs on
  // Meanwhile the guest gets its line and exits, with nobody following.
  const raw = new VmmClient(b.c.socketPath);
  const exited = raw.waitExit();
  const session = raw.console();
  // Drained: a ConsoleSession closed before it was iterated throws CANCELLED as an
  // uncaught stream error (vmm-client).
  const drained = (async () => {
    for await (const _ of session);
  })();
  session.write("while-away\n");
  t.is((await exited).exit?.code, 0);
  await drained;
  raw.close();

  const { c, ctx } = await restart(t, b);
  t.false(isAlive(c!.vmmProcess!), "adopt retired the VMM of the exited VM before it answered");
  const exit = await c!.wait();
  t.is(exit.code, 0);
  t.is(exit.reason, "exited");
  const text = await consoleText(c!, true);
  t.regex(text, /got=while-away/);
  t.is(text.split("ready").length, 2, "the replay did not repeat what was already persisted");
  await c!.destroy();
  assertGone(t, ctx);
});

test("adopt after the exit was persisted and the VMM retired: exit from the file", async (t) => {
  const b = await before(t, s.guestSpec("exit_code", "vmctl.exit=4"));
  await b.c.start();
  t.is((await b.c.wait()).code, 4);
  await until("the VMM is retired", () => !b.ctx.resources.list().some((r) => r.kind === "process"));
  const { c, ctx } = await restart(t, b, undefined);
  t.truthy(c);
  const state = await c!.state();
  t.is(state.phase, "exited");
  t.is(state.exit?.code, 4);
  t.regex(await consoleText(c!, true), /exit_code start/);
  await c!.destroy();
  assertGone(t, ctx);
});

test("a VMM killed while no one watched: lost, and destroy removes its socket", async (t) => {
  const b = await before(t, s.guestSpec("idle"));
  await b.c.start();
  const ref = b.c.vmmProcess!;
  await b.factory.close();
  process.kill(ref.pid, "SIGKILL");
  await until("the VMM is dead", () => !isAlive(ref));
  t.true(existsSync(b.c.socketPath), "SIGKILL leaves the socket behind");
  const { c, ctx } = await restart(t, b);
  const exit = await c!.wait();
  t.is(exit.reason, "lost");
  t.is(exit.code, null);
  await c!.destroy();
  t.false(existsSync(b.c.socketPath));
  assertGone(t, ctx);
});

test("adopt with nothing made returns undefined", async (t) => {
  const b = await before(t, s.guestSpec("hello"));
  const { c } = await restart(t, b);
  t.is(c, undefined);
});

test("adopt of a prepared, never started service: created, startable, and destroy cleans up", async (t) => {
  const b = await before(t, s.guestSpec("exit_code", "vmctl.exit=3"));
  await b.c.prepare();
  const { c, ctx } = await restart(t, b);
  t.is((await c!.state()).phase, "created");
  await c!.start();
  t.is((await c!.wait()).code, 3);
  await c!.destroy();
  assertGone(t, ctx);
});

test("a start interrupted before the VMM ran: failed, and destroy cleans up", async (t) => {
  const b = await before(t, s.guestSpec("hello"));
  b.ctx.resources.intend(ledger.socket(b.c.socketPath));
  b.ctx.resources.intend(ledger.vmm(b.id, b.c.socketPath));
  const { c, ctx } = await restart(t, b);
  const exit = await c!.wait();
  t.is(exit.reason, "failed");
  t.regex(exit.detail ?? "", /interrupted/);
  await c!.destroy();
  assertGone(t, ctx);
});

test("a start interrupted after the spawn, before the pid was recorded: the VMM is found by its socket and stopped", async (t) => {
  const b = await before(t, s.guestSpec("hello"));
  b.ctx.resources.intend(ledger.socket(b.c.socketPath));
  b.ctx.resources.intend(ledger.vmm(b.id, b.c.socketPath));
  const ref = await spawnVmmDetached({
    binary: b.factory.binary,
    socketPath: b.c.socketPath,
    vmId: `vmctl-${b.id}`,
    logFile: `${b.ctx.serviceDir}/vmm.log`,
    cwd: b.ctx.serviceDir,
    labels: {},
  });
  t.teardown(() => terminate(ref));
  await until("the VMM's socket exists", () => existsSync(b.c.socketPath));
  const { c, ctx } = await restart(t, b);
  const exit = await c!.wait();
  t.is(exit.reason, "failed", JSON.stringify(exit));
  t.regex(exit.detail ?? "", /never ran/);
  t.false(isAlive(ref), "the half-made VMM was stopped");
  await c!.destroy();
  assertGone(t, ctx);
});

test("kill -9 of the process that created the VM: the VM keeps running and is adopted", async (t) => {
  const id = `crash${++seq}`;
  const ctx0 = testContext(s.dir, id);
  const spec = s.guestSpec("ticker");
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
    child.once("exit", (code) => reject(new Error(`crash child exited with ${code} before starting the VM`)));
  });
  child.kill("SIGKILL");
  await exited;
  const persisted = JSON.parse(line) as { resources: OwnedResource[]; data: JsonValue };
  t.is(vmmsUnder(`${ctx0.serviceDir}/`).size, 1, "the VMM outlived its parent");

  const factory = s.factory();
  const ctx = testContext(s.dir, id, persisted.resources);
  const c = await factory.adopt({ id, target: "microvm", spec: factory.validate(spec), data: persisted.data, resources: persisted.resources }, ctx);
  t.truthy(c);
  t.teardown(() => c?.destroy());
  const state = await c!.state();
  t.is(state.phase, "running");
  t.true(vmmsUnder(`${ctx.serviceDir}/`).has(state.pid!));
  const n = ticks(await consoleText(c!)).length;
  await untilConsole(c!, new RegExp(`tick=${n + 2}\\n`));
  await c!.stop({ timeoutMs: 0 });
  t.is((await c!.wait()).reason, "stopped");
  const all = ticks(await consoleText(c!, true));
  t.deepEqual(all, all.map((_, i) => i), "the console is whole across the crash");
  await c!.destroy();
  assertGone(t, ctx);
});
