// The microvm controller's own part in images, with the real image engine behind a real
// ImageStore: the writable layer recorded before it is made and made once, no image
// engine, and adopt after a crash mid-prepare. (The VM's disks as the guest sees them:
// image.test.ts.)
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { VmctlError, type ImageAccess, type Orchestrator, type ProgressEvent } from "@vmctl/core";
import { parseVmConfig } from "./vm-config.js";
import { scratch, testContext } from "./testing/context.js";
import { untilConsole } from "./testing/helpers.js";
import { imageFixtures } from "./testing/images.js";

const s = scratch("vmctl-mvm-image-ctl-");
test.after.always(() => s.cleanup());
const MIB = 1024 * 1024;
const { image, open, imageSpec } = imageFixtures(s);

/** The image store of an engine as one service's ImageAccess, watching what the target does with it. */
function watchedAccess(engine: Orchestrator, seen: { layers: string[]; ledgerAtCreate: string[][] }, ledger: () => readonly { key: string }[]): ImageAccess {
  return {
    // resolve, not use: this context's service is not in the engine's database, so nothing to pin it to.
    use: (reference, progress) => engine.images.resolve(reference, progress),
    createWritableLayer: async (path, sizeBytes) => {
      seen.layers.push(path);
      seen.ledgerAtCreate.push(ledger().map((r) => r.key));
      await engine.images.createWritableLayer(path, sizeBytes);
    },
  };
}

test("controller: the writable layer is in the ledger before it is made; prepare is idempotent; destroy removes it and releases it, never the base disk", async (t) => {
  const img = await image();
  const engine = await open(t);
  const factory = s.factory();
  const ctx0 = testContext(s.dir, "ctl-image");
  const seen = { layers: [] as string[], ledgerAtCreate: [] as string[][] };
  const ctx = { ...ctx0, images: watchedAccess(engine, seen, () => ctx0.resources.list()) };
  const layer = join(ctx.serviceDir, "scratch.ext4");
  // A partial file left by a crash inside the engine does not stop the next create.
  writeFileSync(join(ctx.serviceDir, "scratch.partial"), "left over");

  const c = await factory.create("ctl-image", factory.validate(imageSpec(img.ref, "ticker", { diskSizeMib: 16 })), ctx);
  t.teardown(() => c.destroy());
  const events: ProgressEvent[] = [];
  await c.prepare((e) => events.push(e));
  t.true(events.length > 0, "prepare hands its progress to the pull");
  await c.prepare();
  t.deepEqual(seen.layers, [layer], "made once");
  t.true(seen.ledgerAtCreate[0]?.includes(layer), "recorded before it was made");
  t.deepEqual(ctx.resources.list().map((r) => `${r.kind} ${r.key}`), [`file ${layer}`, `file ${join(ctx.serviceDir, "vm.json")}`]);
  t.false(existsSync(join(ctx.serviceDir, "scratch.partial")));
  const base = engine.images.inspect(img.manifest.digest);
  t.deepEqual(c.record(), { vmId: "vmctl-ctl-image", socket: c.socketPath, vmm: null, image: { digest: base.digest, disk: base.disk } });

  await c.start();
  await untilConsole(c, /tick=/);
  t.is((await c.state()).phase, "running");
  t.deepEqual(seen.layers, [layer], "start makes nothing again");
  await c.destroy();
  t.false(existsSync(layer));
  t.deepEqual(readdirSync(ctx.serviceDir), []);
  t.deepEqual(ctx.resources.list(), []);
  t.true(existsSync(base.disk));
});

test("controller: a prepare with an image on a vmctld without an image engine fails FAILED_PRECONDITION and makes nothing", async (t) => {
  const factory = s.factory();
  const ctx = testContext(s.dir, "ctl-no-engine");
  const c = await factory.create("ctl-no-engine", factory.validate(imageSpec("node:20", "hello")), ctx);
  t.teardown(() => c.destroy());
  const err = await t.throwsAsync(c.prepare(), { instanceOf: VmctlError });
  t.is(err?.code, "FAILED_PRECONDITION");
  t.deepEqual(readdirSync(ctx.serviceDir), []);
  t.deepEqual(ctx.resources.list(), []);
});

test("adopt after a crash between making the writable layer and writing vm.json: the controller is found, a start prepares again, destroy removes the layer", async (t) => {
  const img = await image();
  const engine = await open(t);
  const id = "ctl-crashed";
  const spec = s.factory().validate(imageSpec(img.ref, "hello", { diskSizeMib: 16 }));
  // What the crashed process left: the ledger entry (intended first) and the layer, no vm.json.
  const before = testContext(s.dir, id);
  const layer = join(before.serviceDir, "scratch.ext4");
  before.resources.intend({ kind: "file", key: layer });
  await engine.images.createWritableLayer(layer, 16 * MIB);

  const factory = s.factory();
  const ctx0 = testContext(s.dir, id, before.resources.list());
  const seen = { layers: [] as string[], ledgerAtCreate: [] as string[][] };
  const ctx = { ...ctx0, images: watchedAccess(engine, seen, () => ctx0.resources.list()) };
  const c = await factory.adopt({ id, target: "microvm", spec, resources: ctx.resources.list() }, ctx);
  if (c === undefined) return t.fail("adopt found nothing, though the ledger names the layer");
  t.teardown(() => c.destroy());
  t.is((await c.state()).phase, "created");
  await c.start();
  t.is((await c.wait()).code, 0);
  t.deepEqual(seen.layers, [], "the layer already there is kept, not made again");
  t.is(parseVmConfig(readFileSync(join(ctx.serviceDir, "vm.json"), "utf8"), "vm.json").image?.digest, img.manifest.digest);
  await c.destroy();
  t.false(existsSync(layer));
  t.deepEqual(ctx.resources.list(), []);
});
