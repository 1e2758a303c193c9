// An image VM run through the guest agent, on this PVM host: Linux (so the agent) cannot
// boot here, so these are the failure paths, with a test guest standing in for a kernel
// whose agent never comes. The agent's success paths (the workload's streams and exit,
// exec, stop) are proven through the nested host: tests/nested/built-kernel.suite.ts.
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import test from "ava";
import { VmctlError } from "@vmctl/core";
import { parseVmConfig } from "./vm-config.js";
import { scratch, socketsUnder, testContext, vmmsUnder } from "./testing/context.js";
import { imageFixtures } from "./testing/images.js";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { MicrovmController } from "./controller.js";

const s = scratch("vmctl-mvm-workload-");
test.after.always(() => s.cleanup());
const { image, open, imageSpec } = imageFixtures(s);

test("a VM that ends before its agent answers: the start fails saying so with the console, and leaves no relay, vsock socket or VMM; exec is refused, copyOut finds nothing kept", async (t) => {
  const img = await image();
  const engine = await open(t);
  const factory = s.factory();
  const ctx = { ...testContext(s.dir, "no-agent"), images: { use: (r: string) => engine.images.resolve(r), createWritableLayer: (p: string, n: number) => engine.images.createWritableLayer(p, n) } };
  // agent: true on a test guest: it boots with the agent's initramfs and vsock, prints its lines and exits.
  const mounts = [{ source: s.dir, destination: "/src", readOnly: true }];
  const spec = factory.validate(imageSpec(img.ref, "hello", { agent: true, args: ["true"], memoryMib: 64, diskSizeMib: 16, mounts, copyOut: ["/src/out"] }));
  const c = (await factory.create("no-agent", spec, ctx)) as MicrovmController;
  t.teardown(() => c.destroy());
  await c.prepare();
  const vm = parseVmConfig(readFileSync(join(ctx.serviceDir, "vm.json"), "utf8"), "vm.json");
  t.deepEqual(vm.agent?.workload.args, ["true"]);
  t.deepEqual(vm.agent?.workspace, { mounts, copyOut: ["/src/out"] });
  t.regex(vm.bootArgs, / rdinit=\/init --root-base \/dev\/vda --root-scratch \/dev\/vdb --hostname no-agent --listen vsock:1024$/);

  const err = await t.throwsAsync(c.start(), { instanceOf: VmctlError });
  t.is(err?.code, "FAILED_PRECONDITION", err?.message);
  t.regex(err?.message ?? "", /ended before its guest agent answered; the console:\n[\s\S]*hello from the vmctl test guest/);
  t.like((await c.state()).exit, { code: null, reason: "failed" });
  t.deepEqual([...vmmsUnder(s.dir).keys()], [], "no VMM left");
  t.false(existsSync(join(ctx.serviceDir, "agent.sock")), "no relay socket left");
  t.false(existsSync(join(ctx.serviceDir, "vsock.sock")), "no vsock socket left");
  const exec = await t.throwsAsync(c.exec({ args: ["true"] }), { instanceOf: VmctlError });
  t.is(exec?.code, "FAILED_PRECONDITION");
  t.regex(exec?.message ?? "", /no-agent has exited/);
  // Its workload never ran, so nothing was kept; any other path: the VM is gone.
  const copy = async (path: string) => t.throwsAsync(async () => {
    for await (const _ of c.copyOut(path));
  }, { instanceOf: VmctlError });
  t.like(await copy("/src/out"), { code: "FAILED_PRECONDITION", message: "/src/out was not kept: the VM ended without its workload ending first (stopped by force, failed or lost), so nothing was copied out of it" });
  t.regex((await copy("/etc"))?.message ?? "", /the VM has powered off; only the paths given at run \(--copy-out\) are kept/);
  await c.destroy();
  t.deepEqual(socketsUnder(ctx.serviceDir), []);
  t.deepEqual(ctx.resources.list(), [], "every ledger entry released");
});

test("exec and copyOut on a kernel-only VM are refused: no guest agent; empty args are refused first, naming the field", async (t) => {
  const factory = s.factory();
  const ctx = testContext(s.dir, "kernel-only");
  const c = (await factory.create("kernel-only", factory.validate(s.guestSpec("ticker")), ctx)) as MicrovmController;
  t.teardown(() => c.destroy());
  await c.prepare();
  await c.start();
  const err = await t.throwsAsync(c.exec({ args: ["true"] }), { instanceOf: VmctlError });
  t.is(err?.code, "FAILED_PRECONDITION");
  t.regex(err?.message ?? "", /no guest agent/);
  const empty = await t.throwsAsync(c.exec({ args: [] }), { instanceOf: VmctlError });
  t.is(empty?.code, "INVALID_ARGUMENT");
  t.is(empty?.details.field, "args");
  const copy = await t.throwsAsync(async () => {
    for await (const _ of c.copyOut("/etc"));
  }, { instanceOf: VmctlError });
  t.is(copy?.code, "FAILED_PRECONDITION");
  t.regex(copy?.message ?? "", /no guest agent: copying files out needs an image VM/);
});

test("a mount whose source is gone by start: refused before any VM is booted, naming it", async (t) => {
  const img = await image();
  const engine = await open(t);
  const factory = s.factory();
  const ctx = { ...testContext(s.dir, "mount-gone"), images: { use: (r: string) => engine.images.resolve(r), createWritableLayer: (p: string, n: number) => engine.images.createWritableLayer(p, n) } };
  const source = mkdtempSync(join(s.dir, "mount-src-"));
  const spec = factory.validate(imageSpec(img.ref, "hello", { agent: true, args: ["true"], memoryMib: 64, diskSizeMib: 16, mounts: [{ source, destination: "/src" }] }));
  const c = (await factory.create("mount-gone", spec, ctx)) as MicrovmController;
  t.teardown(() => c.destroy());
  await c.prepare();
  rmSync(source, { recursive: true });
  const err = await t.throwsAsync(c.start(), { instanceOf: VmctlError });
  t.is(err?.code, "FAILED_PRECONDITION");
  t.is(err?.message, `mounts[0].source: ${source} is not there any more`);
  t.false(existsSync(join(ctx.serviceDir, "console.log")), "no VM was booted");
  t.is(c.vmmProcess, undefined, "no VMM spawned");
  t.deepEqual([...vmmsUnder(c.socketPath).keys()], [], "none serving its socket");
});
