// Bad requests over gRPC: the right status, a message naming the field, and nothing
// half-created (no service, no runc container, no service dir).
import { readdirSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { VmctlError, type VmctlClient } from "@vmctl/client";
import { Daemon, runcList, sandbox, serviceProcesses, teardown, type Sandbox } from "./helpers/sandbox.js";

let sb: Sandbox;
let daemon: Daemon;

test.before(async () => {
  sb = sandbox();
  daemon = await Daemon.start(sb);
});

test.after.always(async () => {
  if (sb) await teardown(sb, [daemon]);
});

async function refused(client: VmctlClient, call: Promise<unknown>): Promise<VmctlError> {
  const err = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof VmctlError)) throw new Error(`expected a VmctlError, got ${String(err)}`);
  void client;
  return err;
}

function serviceDirs(): string[] {
  try {
    return readdirSync(join(sb.stateDir, "services"));
  } catch {
    return [];
  }
}

test.serial("unknown target: NOT_FOUND naming the target field", async (t) => {
  const err = await refused(daemon.client, daemon.client.create({ target: "nope", spec: { rootfs: sb.rootfs, args: ["true"] } }));
  t.is(err.code, "NOT_FOUND");
  t.is(err.details.field, "target");
  t.regex(err.message, /^target: unknown target "nope"/);
});

test.serial("spec without its rootfs: INVALID_ARGUMENT naming spec.rootfs", async (t) => {
  const err = await refused(daemon.client, daemon.client.create({ target: "oci", spec: { args: ["true"] } }));
  t.is(err.code, "INVALID_ARGUMENT");
  t.is(err.details.field, "spec.rootfs");
  t.regex(err.message, /^spec\.rootfs: /);
  // the run shorthand without an image says the same
  const run = await refused(daemon.client, daemon.client.create({ target: "oci", run: { command: ["true"] } }));
  t.is(run.details.field, "spec.rootfs");
});

test.serial("negative memory: INVALID_ARGUMENT naming the field", async (t) => {
  const err = await refused(
    daemon.client,
    daemon.client.create({ target: "oci", spec: { rootfs: sb.rootfs, args: ["true"], resources: { memoryBytes: -1 } } }),
  );
  t.is(err.code, "INVALID_ARGUMENT");
  t.is(err.details.field, "spec.resources.memoryBytes");
  t.regex(err.message, /^spec\.resources\.memoryBytes: /);
});

test.serial("a name already taken: ALREADY_EXISTS, the first service untouched", async (t) => {
  const first = await daemon.client.create({ name: "taken", target: "oci", spec: { rootfs: sb.rootfs, args: ["true"] } });
  const err = await refused(daemon.client, daemon.client.create({ name: "taken", target: "oci", spec: { rootfs: sb.rootfs, args: ["true"] } }));
  t.is(err.code, "ALREADY_EXISTS");
  t.regex(err.message, /taken/);
  t.deepEqual((await daemon.client.list()).map((s) => s.id), [first.id]);
  t.deepEqual(serviceDirs(), [first.id]);
  await daemon.client.delete("taken");
});

test.serial("unknown service id: NOT_FOUND for every verb", async (t) => {
  const c = daemon.client;
  for (const call of [c.get("ghost"), c.start("ghost"), c.stop("ghost"), c.delete("ghost"), c.wait("ghost")]) {
    const err = await refused(c, call);
    t.is(err.code, "NOT_FOUND");
    t.is(err.details.serviceId, "ghost");
    t.regex(err.message, /ghost/);
  }
  const logs = await refused(c, (async () => {
    for await (const _ of c.logs("ghost")) void _;
  })());
  t.is(logs.code, "NOT_FOUND");
});

test.serial("a start that fails (no such executable) with start=true leaves nothing behind", async (t) => {
  const err = await refused(
    daemon.client,
    daemon.client.create({ name: "broken", target: "oci", spec: { rootfs: sb.rootfs, args: ["/bin/does-not-exist"] }, start: true }),
  );
  t.is(err.code, "FAILED_PRECONDITION");
  t.regex(err.message, /does-not-exist/);
});

test.serial.afterEach.always("nothing half-created is left behind", async (t) => {
  t.deepEqual(await daemon.client.list(), []);
  t.deepEqual(serviceDirs(), []);
  t.deepEqual(runcList(sb.runcRoot), []);
  t.deepEqual(serviceProcesses(sb), []);
});
