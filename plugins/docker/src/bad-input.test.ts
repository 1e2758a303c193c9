// Bad input fails clearly, at the earliest point it can be seen, and leaves nothing behind:
// no container on the daemon, no entry in the ledger.
import { writeFileSync, unlinkSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import test from "ava";
import { VmctlError } from "@vmctl/core/contract";
import { scratch } from "./testing/context.js";

const s = await scratch("vmctl-docker-bad-");
const factory = s.factory();
let seq = 0;

test.after.always("nothing of this file is left on the daemon", async (t) => {
  const left = await s.leftovers();
  await factory.close();
  await s.cleanup();
  t.deepEqual(left, []);
});

test("an unreachable socket: create rejects UNAVAILABLE naming the socket; nothing is made", async (t) => {
  for (const [what, socket] of [
    ["no such file", join(s.dir, "missing.sock")],
    ["not a socket", join(s.dir, "plain-file.sock")],
  ] as const) {
    if (what === "not a socket") writeFileSync(socket, "");
    const f = s.factory({ socket });
    const ctx = s.context(`u${++seq}`);
    const err = await t.throwsAsync(f.create(ctx.serviceId, f.validate({ image: s.image, args: ["true"] }), ctx), { instanceOf: VmctlError }, what);
    t.is(err?.code, "UNAVAILABLE", what);
    t.true(err?.message.includes(socket), `${what}: ${err?.message}`);
    t.is(err?.details.target, "docker");
    t.deepEqual(ctx.resources.list(), [], what);
  }
});

test("a daemon that accepts but never answers: create fails UNAVAILABLE within the ping timeout, not hangs", async (t) => {
  const socket = join(s.dir, "silent.sock");
  // Reads (and drops) requests, never answers; reading lets it see the client hang up.
  const server: Server = createServer((conn) => conn.resume());
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const f = s.factory({ socket });
  const ctx = s.context(`u${++seq}`);
  const started = Date.now();
  const err = await t.throwsAsync(f.create(ctx.serviceId, f.validate({ image: s.image }), ctx), { instanceOf: VmctlError });
  t.is(err?.code, "UNAVAILABLE");
  t.regex(err?.message ?? "", /did not answer/);
  t.true(Date.now() - started < 10_000);
  await f.close();
});

test("a missing image: create rejects NOT_FOUND naming spec.image; nothing is made", async (t) => {
  const ctx = s.context(`u${++seq}`);
  const err = await t.throwsAsync(factory.create(ctx.serviceId, factory.validate({ image: "vmctl-test/no-such-image:0", args: ["true"] }), ctx), { instanceOf: VmctlError });
  t.is(err?.code, "NOT_FOUND");
  t.is(err?.details.field, "spec.image");
  t.regex(err?.message ?? "", /vmctl-test\/no-such-image:0 is not present.*does not pull/);
  t.deepEqual(ctx.resources.list(), []);
});

test("a missing Docker network: prepare rejects FAILED_PRECONDITION naming spec.network; nothing is made", async (t) => {
  const ctx = s.context(`u${++seq}`);
  const c = await factory.create(ctx.serviceId, factory.validate({ image: s.image, network: "vmctl-no-such-net" }), ctx);
  const err = await t.throwsAsync(c.start(), { instanceOf: VmctlError });
  t.is(err?.code, "FAILED_PRECONDITION");
  t.is(err?.details.field, "spec.network");
  t.deepEqual(ctx.resources.list(), []);
  t.false((await s.leftovers()).includes(c.containerName));
  await c.destroy();
});

test("a bad image archive: missing at validate, garbage or vanished at prepare — named, nothing made", async (t) => {
  const missing = join(s.dir, "missing.tar");
  const err1 = t.throws(() => factory.validate({ imageArchive: missing }));
  t.is((err1 as VmctlError | undefined)?.details.field, "imageArchive");

  const garbage = join(s.dir, "garbage.tar");
  writeFileSync(garbage, "this is not a tar archive\n".repeat(100));
  const ctx = s.context(`u${++seq}`);
  const c = await factory.create(ctx.serviceId, factory.validate({ imageArchive: garbage, args: ["true"] }), ctx);
  const err2 = await t.throwsAsync(c.prepare(), { instanceOf: VmctlError });
  t.is(err2?.code, "INVALID_ARGUMENT");
  t.is(err2?.details.field, "spec.imageArchive");
  t.true(err2?.message.includes(garbage));
  t.deepEqual(ctx.resources.list(), []);
  t.false((await s.leftovers()).includes(c.containerName));
  await c.destroy();

  const vanishing = join(s.dir, "vanishing.tar");
  writeFileSync(vanishing, "");
  const ctx3 = s.context(`u${++seq}`);
  const c3 = await factory.create(ctx3.serviceId, factory.validate({ imageArchive: vanishing }), ctx3);
  unlinkSync(vanishing);
  const err3 = await t.throwsAsync(c3.start(), { instanceOf: VmctlError });
  t.is(err3?.code, "NOT_FOUND");
  t.is(err3?.details.field, "spec.imageArchive");
  t.deepEqual(ctx3.resources.list(), []);
  await c3.destroy();
});

test("Docker refusing the container (too many CPUs): prepare rejects with Docker's reason; the ledger entry is released", async (t) => {
  const ctx = s.context(`u${++seq}`);
  const c = await factory.create(ctx.serviceId, factory.validate({ image: s.image, resources: { cpus: 4096 } }), ctx);
  const err = await t.throwsAsync(c.prepare(), { instanceOf: VmctlError });
  t.is(err?.code, "FAILED_PRECONDITION");
  t.regex(err?.message ?? "", /CPU/i);
  t.deepEqual(ctx.resources.list(), []);
  t.is(ctx.resources.history().length, 1, "it was recorded before Docker was asked");
  await c.destroy();
});
