// An image VM run through the guest agent, on this PVM host: Linux (so the agent) cannot
// boot here, so these are the failure paths, with a test guest standing in for a kernel
// whose agent never comes. The agent's success paths (the workload's streams and exit,
// exec, stop) are proven through the nested host: tests/nested/built-kernel.suite.ts.
import { existsSync } from "node:fs";
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

test("a VM that ends before its agent answers: the start fails saying so with the console, and leaves no relay, vsock socket or VMM; exec is refused", async (t) => {
  const img = await image();
  const engine = await open(t);
  const factory = s.factory();
  const ctx = { ...testContext(s.dir, "no-agent"), images: { use: (r: string) => engine.images.resolve(r), createWritableLayer: (p: string, n: number) => engine.images.createWritableLayer(p, n) } };
  // agent: true on a test guest: it boots with the agent's initramfs and vsock, prints its lines and exits.
  const spec = factory.validate(imageSpec(img.ref, "hello", { agent: true, args: ["true"], memoryMib: 64, diskSizeMib: 16 }));
  const c = (await factory.create("no-agent", spec, ctx)) as MicrovmController;
  t.teardown(() => c.destroy());
  await c.prepare();
  const vm = parseVmConfig(readFileSync(join(ctx.serviceDir, "vm.json"), "utf8"), "vm.json");
  t.deepEqual(vm.agent?.workload.args, ["true"]);
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
  await c.destroy();
  t.deepEqual(socketsUnder(ctx.serviceDir), []);
  t.deepEqual(ctx.resources.list(), [], "every ledger entry released");
});

test("exec on a kernel-only VM is refused: no guest agent; empty args are refused first, naming the field", async (t) => {
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
});
