// The lifecycle against the real vmctl-vmm and real /dev/kvm, with test guests.
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import test, { type ExecutionContext } from "ava";
import type { MicrovmController } from "./controller.js";
import { PVM_HINT } from "./exit.js";
import { scratch, socketsUnder, testContext, vmmsUnder, type TestContext } from "./testing/context.js";
import { consoleText, ticks, untilConsole } from "./testing/helpers.js";
import { isAlive } from "./vmm-process.js";

const s = scratch("vmctl-mvm-ctl-");
test.after.always(() => s.cleanup());
const factory = s.factory();

let seq = 0;

async function make(t: ExecutionContext, spec: unknown): Promise<{ c: MicrovmController; ctx: TestContext }> {
  const id = `c${++seq}`;
  const ctx = testContext(s.dir, id);
  const c = await factory.create(id, factory.validate(spec), ctx);
  t.teardown(() => c.destroy());
  return { c, ctx };
}

/** Nothing of the service is left: no VMM, no socket, no files, no ledger entries. */
function assertGone(t: ExecutionContext, c: MicrovmController, ctx: TestContext): void {
  t.deepEqual([...vmmsUnder(`${ctx.serviceDir}/`).keys()], [], "no VMM serves a socket of this service");
  const pid = c.vmmProcess;
  if (pid) t.false(isAlive(pid), "the VMM process is gone");
  t.false(existsSync(c.socketPath), "the socket is removed");
  t.deepEqual(readdirSync(ctx.serviceDir), [], "no per-VM files");
  t.deepEqual(ctx.resources.list(), [], "every ledger entry released");
}

test("lifecycle: create → prepare → start → logs → wait gives the guest's exit code", async (t) => {
  const { c, ctx } = await make(t, s.guestSpec("exit_code", "vmctl.exit=7"));
  t.is((await c.state()).phase, "created");
  await c.prepare();
  t.deepEqual(ctx.resources.list().map((r) => r.key), [join(ctx.serviceDir, "vm.json")], "prepare writes down the VM, recorded first");
  await c.start();
  const exit = await c.wait();
  t.is(exit.code, 7);
  t.is(exit.reason, "exited");
  const state = await c.state();
  t.is(state.phase, "exited");
  t.is(state.instance, `vmctl-${c.id}`);
  const text = await consoleText(c, true);
  t.regex(text, /vmctl-guest: exit_code start/);
  await c.start(); // idempotent after the end
  await c.destroy();
  assertGone(t, c, ctx);
  await c.destroy(); // idempotent
  t.is((await c.state()).exit?.code, 7, "the exit is still known after destroy");
});

test("hello: the console holds the guest's lines and the exit is persisted", async (t) => {
  const { c, ctx } = await make(t, s.guestSpec("hello"));
  await c.start();
  t.is((await c.wait()).code, 0);
  // wait() answers once the VMM is retired: stopped, its process and socket released from the ledger.
  t.false(isAlive(c.vmmProcess!), "the VMM is gone when wait() answers");
  t.deepEqual(ctx.resources.list().filter((r) => r.kind === "process" || r.kind === "socket"), []);
  t.false(existsSync(c.socketPath));
  t.regex(await consoleText(c), /hello from the vmctl test guest/);
  t.regex(readFileSync(join(ctx.serviceDir, "console.log"), "utf8"), /vmctl-guest: hello PASS/);
  t.is(JSON.parse(readFileSync(join(ctx.serviceDir, "exit.json"), "utf8")).code, 0);
  await c.destroy();
  assertGone(t, c, ctx);
});

test("ticker: logs follow while it runs; stop ends it as stopped; destroy leaves nothing", async (t) => {
  const { c, ctx } = await make(t, s.guestSpec("ticker"));
  await c.start();
  const running = await c.state();
  t.is(running.phase, "running");
  t.true(running.pid !== undefined && vmmsUnder(`${ctx.serviceDir}/`).has(running.pid), "pid is the VMM's");

  const followed: Buffer[] = [];
  const following = (async () => {
    for await (const chunk of c.logs({ follow: true })) followed.push(Buffer.from(chunk.data));
  })();
  await untilConsole(c, /tick=3\n/);
  await c.stop({ timeoutMs: 200 }); // the ticker ignores Ctrl-Alt-Del: forced after the grace
  const exit = await c.wait();
  t.is(exit.reason, "stopped");
  t.is(exit.code, null);
  await following; // follow ends once the VM has exited
  const seen = ticks(Buffer.concat(followed).toString());
  t.true(seen.length >= 4);
  t.deepEqual(seen, seen.map((_, i) => i), "every tick once, in order");
  await c.destroy();
  assertGone(t, c, ctx);
});

test("ctrl_alt_del: stop gives a clean reset exit within the grace", async (t) => {
  const { c } = await make(t, s.guestSpec("ctrl_alt_del"));
  await c.start();
  await untilConsole(c, /waiting for ctrl-alt-del/);
  await c.stop({ timeoutMs: 30_000 });
  const exit = await c.wait();
  t.is(exit.reason, "reset", JSON.stringify(exit));
  t.is(exit.code, 0);
  t.regex(await consoleText(c), /ctrl-alt-del received/);
});

test("int3: the VM fails with the KVM detail", async (t) => {
  const { c } = await make(t, s.guestSpec("int3"));
  await c.start();
  const exit = await c.wait();
  t.is(exit.reason, "failed", JSON.stringify(exit));
  t.is(exit.code, null);
  t.regex(exit.detail ?? "", /KVM error: .+/);
  // On a PVM host (this machine) the detail also says a stock Linux cannot run here.
  t.is((exit.detail ?? "").includes(PVM_HINT), existsSync("/sys/module/kvm_pvm"), exit.detail);
});

test("an initrd reaches the VMM: one larger than guest memory fails the start with the VMM's reason", async (t) => {
  const initrd = join(s.dir, `initrd-${seq}.cpio`);
  writeFileSync(initrd, Buffer.alloc(24 << 20));
  const { c, ctx } = await make(t, { ...s.guestSpec("hello"), memoryMib: 16, initrd });
  const err = await t.throwsAsync(c.start());
  t.regex(err?.message ?? "", /initrd/);
  const exit = (await c.state()).exit;
  t.is(exit?.reason, "failed");
  t.regex(exit?.detail ?? "", /initrd_path/);
  await c.destroy();
  assertGone(t, c, ctx);
});

test("a virtio drive: the guest's writes reach the file", async (t) => {
  const disk = join(s.dir, `disk-${seq}.img`);
  const before = Buffer.from(Array.from({ length: 128 * 512 }, (_, i) => i % 251));
  writeFileSync(disk, before);
  const { c } = await make(t, { ...s.guestSpec("virtio-blk-rw", "vmctl.drive_id=rootfs"), drives: [{ id: "rootfs", path: disk, root: true }] });
  await c.start();
  const exit = await c.wait();
  t.is(exit.code, 0, await consoleText(c));
  const after = readFileSync(disk);
  t.notDeepEqual(after.subarray(8 * 512, 72 * 512), before.subarray(8 * 512, 72 * 512), "writes reached the file");
  t.regex(await consoleText(c), /drive_id=rootfs/);
});

test("pause and resume through the VMM", async (t) => {
  const { c } = await make(t, s.guestSpec("ticker"));
  await c.start();
  await untilConsole(c, /tick=1\n/);
  await c.pause();
  t.is((await c.state()).phase, "paused");
  await c.pause(); // idempotent
  await c.resume();
  t.is((await c.state()).phase, "running");
  const after = ticks(await consoleText(c)).length;
  await untilConsole(c, new RegExp(`tick=${after + 1}\\n`));
  await c.stop({ timeoutMs: 0 });
  t.is((await c.wait()).reason, "stopped");
});

test("stop before start: exited as stopped, start does nothing, nothing was made", async (t) => {
  const { c, ctx } = await make(t, s.guestSpec("hello"));
  await c.stop();
  const state = await c.state();
  t.is(state.phase, "exited");
  t.is(state.exit?.reason, "stopped");
  await c.start();
  t.is(c.vmmProcess, undefined);
  await c.destroy();
  assertGone(t, c, ctx);
});

test("a start the VMM refuses fails, reports why, and destroy cleans up", async (t) => {
  // Too little memory for the kernel: refused at Start.
  const notElf = join(s.dir, "not-a-kernel.bin");
  writeFileSync(notElf, Buffer.alloc(4096, 0x90));
  const { c, ctx } = await make(t, { kernel: notElf, memoryMib: 16 });
  const err = await t.throwsAsync(() => c.start());
  t.is(err?.name, "VmctlError");
  const state = await c.state();
  t.is(state.phase, "exited");
  t.is(state.exit?.reason, "failed");
  t.regex(state.exit?.detail ?? "", /kernel/i);
  await c.destroy();
  assertGone(t, c, ctx);
});

test("destroy of a running VM stops it, and is idempotent", async (t) => {
  const { c, ctx } = await make(t, s.guestSpec("idle"));
  await c.start();
  t.is((await c.state()).phase, "running");
  const ref = c.vmmProcess;
  await Promise.all([c.destroy(), c.destroy()]);
  await c.destroy();
  t.false(isAlive(ref!));
  assertGone(t, c, ctx);
  t.is((await c.state()).exit?.reason, "stopped");
});

test("concurrent lifecycles do not interfere", async (t) => {
  const codes = [0, 1, 2, 3, 4, 5, 6, 9];
  const made = await Promise.all(codes.map((code) => make(t, s.guestSpec("exit_code", `vmctl.exit=${code}`))));
  await Promise.all(made.map(({ c }) => c.start()));
  const exits = await Promise.all(made.map(({ c }) => c.wait()));
  t.deepEqual(exits.map((e) => e.code), codes);
  for (const { c } of made) t.regex(await consoleText(c), /exit_code start/);
  await Promise.all(made.map(({ c }) => c.destroy()));
  for (const { c, ctx } of made) assertGone(t, c, ctx);
});

test("a serviceDir too deep for a unix socket: the socket goes to the target's state dir", async (t) => {
  const deep = join(s.dir, "d".repeat(60), "e".repeat(60));
  const id = `deep${++seq}`;
  const ctx = testContext(deep, id);
  const c = await factory.create(id, factory.validate(s.guestSpec("hello")), ctx);
  t.teardown(() => c.destroy());
  t.true(c.socketPath.startsWith(s.stateDir), c.socketPath);
  t.true(Buffer.byteLength(c.socketPath) <= 107);
  await c.start();
  t.is((await c.wait()).code, 0);
  t.true(ctx.resources.list().some((r) => r.kind === "file"), "files are recorded");
  await c.destroy();
  t.deepEqual(socketsUnder(s.stateDir), []);
  t.deepEqual(ctx.resources.list(), []);
});
