// The engine's side of images: recover() at open, ctx.images for each service (bound to
// its id), progress from prepare through create, uses released when a service is deleted.
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import type { PluginRegistration } from "../contract/plugin.js";
import type { ServiceController, TargetContext } from "../contract/target.js";
import type { JsonValue, ProgressEvent, ProgressSink } from "../contract/types.js";
import { VmctlError } from "../errors.js";
import { silentLogger } from "../log/logger.js";
import { Orchestrator } from "../orchestrator/engine.js";
import { tempDir } from "../testing/fixtures.js";
import { StandInImageEngine } from "../testing/stand-in-image-engine.js";
import { NO_IMAGE_ENGINE } from "./image-store.js";

/** Target "img": prepare uses the image named by spec.image, with the prepare's progress. */
const imagePlugin: PluginRegistration = {
  name: "image-using (test)",
  targets: [
    {
      target: "img",
      init: () => ({
        target: "img",
        capabilities: { exec: false, pause: false, network: false, volumes: false, logsFollow: false },
        validate: (spec: unknown) => spec as JsonValue,
        create: async (id: string, spec: JsonValue, ctx: TargetContext) => controller(id, spec, ctx),
        adopt: async (record, ctx) => controller(record.id, record.spec, ctx),
      }),
    },
  ],
};

function controller(id: string, spec: JsonValue, ctx: TargetContext): ServiceController {
  let phase: "created" | "exited" = "created";
  return {
    id,
    async prepare(progress?: ProgressSink) {
      await ctx.images.use((spec as { image: string }).image, progress);
      if ((spec as { failAfterUse?: boolean }).failAfterUse) throw new Error("prepare failed after use");
    },
    async start() {},
    async stop() {
      phase = "exited";
    },
    async state() {
      return { phase, since: new Date() };
    },
    async *logs() {},
    async wait() {
      return { code: 0, reason: "exited", at: new Date() };
    },
    async destroy() {},
    record: () => ({}),
  };
}

test("create passes progress to prepare; ctx.images pins the image for the service until it is deleted", async (t) => {
  const stateDir = tempDir("vmctl-engine-images-");
  const native = new StandInImageEngine().publish("node:20", { layers: ["base", "node"] });
  const engine = await Orchestrator.open({ stateDir, plugins: [imagePlugin], log: silentLogger, images: { native } });
  t.teardown(() => engine.close());
  const events: ProgressEvent[] = [];
  const service = await engine.create({ name: "web", target: "img", spec: { image: "node:20" } }, { progress: (e) => events.push(e) });
  t.true(events.some((e) => e.item !== undefined && e.phase === "download"));
  t.is(native.requests[0]?.storeDir, join(stateDir, "images"));

  const image = engine.images.inspect("node:20");
  t.deepEqual(image.usedBy, [service.id]);
  const refused = await t.throwsAsync(engine.images.remove("node:20"), { instanceOf: VmctlError });
  t.regex(refused?.message ?? "", /used by service web/);

  // Callers without options still work.
  await engine.create({ name: "plain", target: "img", spec: { image: "node:20" } });
  t.is(native.requests.length, 1);

  await engine.delete("web");
  await engine.delete("plain");
  t.deepEqual(engine.images.inspect("node:20").usedBy, []);
  t.deepEqual((await engine.images.remove("node:20")).deleted, [image.digest]);
});

test("a create that fails after use releases what it pinned", async (t) => {
  const native = new StandInImageEngine().publish("node:20", { layers: ["base", "node"] });
  const engine = await Orchestrator.open({ stateDir: tempDir("vmctl-engine-images-"), plugins: [imagePlugin], log: silentLogger, images: { native } });
  t.teardown(() => engine.close());
  await t.throwsAsync(engine.create({ name: "web", target: "img", spec: { image: "node:20", failAfterUse: true } }), { message: /prepare failed after use/ });
  t.deepEqual(engine.images.inspect("node:20").usedBy, []);
  t.deepEqual((await engine.images.prune({ all: true })).removed.length, 1);
});

test("an engine without images refuses use with FAILED_PRECONDITION", async (t) => {
  const stateDir = tempDir("vmctl-engine-images-");
  const engine = await Orchestrator.open({ stateDir, plugins: [imagePlugin], log: silentLogger });
  t.teardown(() => engine.close());
  const err = await t.throwsAsync(engine.create({ name: "web", target: "img", spec: { image: "node:20" } }), { instanceOf: VmctlError });
  t.is(err?.code, "FAILED_PRECONDITION");
  t.true(err?.message.endsWith(NO_IMAGE_ENGINE));
  t.deepEqual(engine.list(), []);
  t.false(engine.images.hasEngine);
});

test("open recovers the image store before services: garbage in tmp and unheld files go", async (t) => {
  const stateDir = tempDir("vmctl-engine-images-");
  const store = join(stateDir, "images");
  for (const dir of ["tmp", "disks", "blobs/sha256"]) mkdirSync(join(store, dir), { recursive: true });
  writeFileSync(join(store, "tmp", "partial"), "x");
  writeFileSync(join(store, "disks", `${"a".repeat(64)}.ext4`), "x");
  writeFileSync(join(store, "blobs", "sha256", "b".repeat(64)), "x");
  const engine = await Orchestrator.open({ stateDir, plugins: [imagePlugin], log: silentLogger });
  t.teardown(() => engine.close());
  t.deepEqual(engine.imageRecovery.tmpEntries, ["partial"]);
  t.is(engine.imageRecovery.orphanDisks.length, 1);
  t.is(engine.imageRecovery.orphanBlobs.length, 1);
  for (const dir of ["tmp", "disks", "blobs/sha256"]) t.deepEqual(readdirSync(join(store, dir)), []);
});
