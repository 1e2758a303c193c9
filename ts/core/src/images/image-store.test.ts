// The image store's logic over real files, with a STAND-IN engine (testing/
// stand-in-image-engine.ts) writing the native layout: the index, name moves,
// remove/prune, pinning by services, concurrency, error mapping.
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import fc from "fast-check";
import type { ProgressEvent } from "../contract/types.js";
import { VmctlError, type ErrorCode } from "../errors.js";
import { silentLogger } from "../log/logger.js";
import { StateStore } from "../state/state-store.js";
import { tempDir } from "../testing/fixtures.js";
import { StandInImageEngine, type StandInImage } from "../testing/stand-in-image-engine.js";
import { ImageStore, NO_IMAGE_ENGINE } from "./image-store.js";

const NODE20: StandInImage = { layers: ["base layer", "node 20 layer"] };
const NODE22: StandInImage = { layers: ["base layer", "node 22 layer"] };
const ALPINE: StandInImage = { layers: ["alpine layer"] };

function setup(options: { engine?: StandInImageEngine | false } = {}) {
  const stateDir = tempDir("vmctl-images-");
  const state = StateStore.open(stateDir);
  const engine = options.engine === false ? undefined : (options.engine ?? new StandInImageEngine());
  const storeDir = join(stateDir, "images");
  const images = new ImageStore({ storeDir, db: state.database, log: silentLogger, ...(engine === undefined ? {} : { native: engine }) });
  const service = (id: string, name = `svc-${id}`) => {
    state.reserve({ id, name, target: "t", labels: {}, spec: {}, dependsOn: [] });
    return id;
  };
  return { stateDir, state, storeDir, engine: engine as StandInImageEngine, images, service };
}

const blobFiles = (storeDir: string) => readdirSync(join(storeDir, "blobs", "sha256")).sort();
const diskFiles = (storeDir: string) => readdirSync(join(storeDir, "disks")).sort();
const hex = (digest: string) => digest.slice("sha256:".length);

test("a pull records the image with its names, blobs and disk, and maps progress per layer", async (t) => {
  const { images, engine, storeDir } = setup();
  engine.publish("node:20", NODE20);
  const events: ProgressEvent[] = [];
  const image = await images.pull("node:20", { progress: (e) => events.push(e) });

  t.is(image.digest, StandInImageEngine.digestOf(NODE20));
  t.deepEqual(image.references, ["docker.io/library/node:20"]);
  t.is(image.layers.length, 2);
  t.is(image.blobs.length, 4);
  t.deepEqual(image.usedBy, []);
  t.true(existsSync(image.disk));
  t.is(image.disk, join(storeDir, "disks", `${hex(image.digest)}.ext4`));
  t.deepEqual(blobFiles(storeDir), image.blobs.map(hex).sort());
  t.deepEqual(images.list().map((i) => i.digest), [image.digest]);
  t.is(engine.requests[0]?.storeDir, storeDir);

  // One item per layer, whole-image phases without one.
  const layerEvents = events.filter((e) => e.item !== undefined);
  t.deepEqual(new Set(layerEvents.map((e) => e.item)), new Set(image.layers.map((l) => l.digest)));
  t.true(events.some((e) => e.phase === "mkfs" && e.item === undefined));
  t.true(layerEvents.every((e) => typeof e.current === "number" && typeof e.total === "number"));
});

test("inspect and resolve find an image by name, normalised name, digest, prefix and name@digest", async (t) => {
  const { images, engine } = setup();
  engine.publish("node:20", NODE20);
  const { digest } = await images.pull("node:20");
  for (const ref of ["node:20", "docker.io/library/node:20", "library/node:20", digest, hex(digest).slice(0, 12), `sha256:${hex(digest).slice(0, 20)}`, `node@${digest}`]) {
    t.is(images.inspect(ref).digest, digest, ref);
    t.is((await images.resolve(ref)).digest, digest, ref);
  }
  // Found locally: the engine was asked once only.
  t.is(engine.requests.length, 1);
  const missing = t.throws(() => images.inspect("node:18"), { instanceOf: VmctlError });
  t.is(missing?.code, "NOT_FOUND");
  t.regex(missing?.message ?? "", /node:18/);
  t.is(t.throws(() => images.inspect(`sha256:${"0".repeat(64)}`))?.message.includes("sha256:0000"), true);
});

test("resolve pulls what is not held; a bare digest not held is NOT_FOUND, never pulled", async (t) => {
  const { images, engine } = setup();
  engine.publish("alpine", ALPINE);
  const image = await images.resolve("alpine");
  t.deepEqual(image.references, ["docker.io/library/alpine:latest"]);
  const err = await t.throwsAsync(images.resolve(`sha256:${"1".repeat(64)}`), { instanceOf: VmctlError });
  t.is(err?.code, "NOT_FOUND");
  t.is(engine.requests.length, 1);
});

test("a re-pull that finds the tag moved moves the name; the old image stays, dangling", async (t) => {
  const { images, engine } = setup();
  engine.publish("node:lts", NODE20);
  const old = await images.pull("node:lts");
  engine.publish("node:lts", NODE22);
  const moved = await images.pull("node:lts");
  t.not(moved.digest, old.digest);
  t.deepEqual(moved.references, ["docker.io/library/node:lts"]);
  t.deepEqual(images.inspect(old.digest).references, []);
  t.is(images.inspect("node:lts").digest, moved.digest);
  t.is(images.list().length, 2);
});

test("remove by name deletes an unused image's disk, row and the blobs no other image holds", async (t) => {
  const { images, engine, storeDir } = setup();
  engine.publish("node:20", NODE20).publish("node:22", NODE22);
  const a = await images.pull("node:20");
  const b = await images.pull("node:22");
  const shared = a.blobs.filter((blob) => b.blobs.includes(blob));
  t.is(shared.length, 1);

  const result = await images.remove("node:20");
  t.deepEqual(result.untagged, ["docker.io/library/node:20"]);
  t.deepEqual(result.deleted, [a.digest]);
  t.true(result.reclaimedBytes > 0);
  t.false(existsSync(a.disk));
  t.true(existsSync(b.disk));
  t.deepEqual(blobFiles(storeDir), b.blobs.map(hex).sort());
  t.is(images.find(a.digest), undefined);
  t.is((await t.throwsAsync(images.remove("node:20")))?.message, 'no image node:20');
});

test("remove of one of several names only untags", async (t) => {
  const { images, engine } = setup();
  engine.publish("node:20", NODE20).publish("node:iron", NODE20);
  await images.pull("node:20");
  const image = await images.pull("node:iron");
  t.deepEqual(image.references, ["docker.io/library/node:20", "docker.io/library/node:iron"]);
  const result = await images.remove("node:iron");
  t.deepEqual(result, { untagged: ["docker.io/library/node:iron"], deleted: [], reclaimedBytes: 0 });
  t.true(existsSync(image.disk));
  // By digest: every name goes, and the image with them.
  const byDigest = await images.remove(image.digest);
  t.deepEqual(byDigest.untagged, ["docker.io/library/node:20"]);
  t.deepEqual(byDigest.deleted, [image.digest]);
});

test("an image used by a service is pinned: remove is refused naming the service; force drops the name, never the disk", async (t) => {
  const { images, engine, service } = setup();
  engine.publish("node:20", NODE20);
  const web = service("0123456789abcdef", "web");
  const used = await images.use(web, "node:20");
  t.deepEqual(used.usedBy, [web]);

  const refused = await t.throwsAsync(images.remove("node:20"), { instanceOf: VmctlError });
  t.is(refused?.code, "FAILED_PRECONDITION");
  t.regex(refused?.message ?? "", /used by service web/);
  t.deepEqual(images.inspect("node:20").references, ["docker.io/library/node:20"]);

  const forced = await images.remove("node:20", { force: true });
  t.deepEqual(forced, { untagged: ["docker.io/library/node:20"], deleted: [], reclaimedBytes: 0 });
  t.true(existsSync(used.disk));
  // Dangling but used: prune (even --all) keeps it.
  t.deepEqual((await images.prune({ all: true })).removed, []);
  t.true(existsSync(used.disk));

  // Released, it is an ordinary dangling image.
  images.release(web);
  t.deepEqual(images.inspect(used.digest).usedBy, []);
  const pruned = await images.prune();
  t.deepEqual(pruned.removed, [used.digest]);
  t.false(existsSync(used.disk));
});

test("a service forgotten releases its images (image_uses goes with the service row)", async (t) => {
  const { images, engine, service, state } = setup();
  engine.publish("node:20", NODE20);
  const id = service("aaaaaaaaaaaaaaaa");
  await images.use(id, "node:20");
  state.remove(id);
  t.deepEqual(images.inspect("node:20").usedBy, []);
  t.deepEqual((await images.remove("node:20")).untagged, ["docker.io/library/node:20"]);
});

test("use by a service that does not exist is NOT_FOUND and pins nothing", async (t) => {
  const { images, engine } = setup();
  engine.publish("node:20", NODE20);
  const err = await t.throwsAsync(images.use("ffffffffffffffff", "node:20"), { instanceOf: VmctlError });
  t.is(err?.code, "NOT_FOUND");
  t.deepEqual(images.inspect("node:20").usedBy, []);
});

test("prune removes dangling images; with all, every unused one; and blob files no image holds", async (t) => {
  const { images, engine, storeDir, service } = setup();
  engine.publish("node:lts", NODE20).publish("alpine", ALPINE).publish("node:22", NODE22);
  const dangling = await images.pull("node:lts");
  engine.publish("node:lts", NODE22);
  await images.pull("node:lts");
  const alpine = await images.pull("alpine");
  const used = service("bbbbbbbbbbbbbbbb");
  await images.use(used, "node:lts");

  const first = await images.prune();
  t.deepEqual(first.removed, [dangling.digest]);
  t.true(first.reclaimedBytes > 0);
  t.deepEqual(images.list().map((i) => i.digest).sort(), [alpine.digest, StandInImageEngine.digestOf(NODE22)].sort());

  const second = await images.prune({ all: true });
  t.deepEqual(second.removed, [alpine.digest]);
  t.deepEqual(images.list().map((i) => i.digest), [StandInImageEngine.digestOf(NODE22)]);
  const held = new Set(images.list().flatMap((i) => i.blobs.map(hex)));
  t.deepEqual(blobFiles(storeDir), [...held].sort());
  t.deepEqual(diskFiles(storeDir), [`${hex(StandInImageEngine.digestOf(NODE22))}.ext4`]);
});

test("concurrent pulls: one reference runs one at a time, different references run at once", async (t) => {
  const { images, engine } = setup();
  engine.publish("node:20", NODE20).publish("docker.io/library/node:20", NODE20).publish("alpine", ALPINE);
  const held = engine.hold("node:20", "after-blobs");
  const first = images.pull("node:20");
  await held.reached;
  // Same image name spelt differently: waits for the first.
  const second = images.pull("docker.io/library/node:20");
  // Another name: runs meanwhile.
  const other = await images.pull("alpine");
  t.is(engine.maxInFlight, 2);
  t.is(engine.requests.length, 2);
  held.release();
  const [a, b] = await Promise.all([first, second]);
  t.is(a.digest, b.digest);
  t.is(engine.maxInFlight, 2);
  t.is(engine.requests.length, 3);
  t.is(images.list().length, 2);
  t.not(other.digest, a.digest);
});

test("concurrent use of an absent image by several services pulls it once", async (t) => {
  const { images, engine, service } = setup();
  engine.publish("node:20", NODE20);
  const ids = ["1111111111111111", "2222222222222222", "3333333333333333"].map((id) => service(id));
  const records = await Promise.all(ids.map((id) => images.use(id, "node:20")));
  t.is(engine.requests.length, 1);
  t.is(new Set(records.map((r) => r.digest)).size, 1);
  t.deepEqual(images.inspect("node:20").usedBy, ids);
});

test("remove waits for pulls in flight: nothing is deleted under the engine", async (t) => {
  const { images, engine } = setup();
  engine.publish("node:20", NODE20);
  await images.pull("node:20");
  const held = engine.hold("node:20", "after-blobs");
  const repull = images.pull("node:20");
  await held.reached;
  let removed = false;
  const removal = images.remove("node:20").then((r) => {
    removed = true;
    return r;
  });
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.false(removed);
  held.release();
  const image = await repull;
  const result = await removal;
  t.deepEqual(result.deleted, [image.digest]);
  t.false(existsSync(image.disk));
});

test("a failed pull records nothing; engine errors keep their kind and name the reference", async (t) => {
  const { images, engine } = setup();
  const cases: [unknown, ErrorCode][] = [
    [Object.assign(new Error("manifest unknown"), { code: "NOT_FOUND" }), "NOT_FOUND"],
    [Object.assign(new Error("401 from registry"), { code: "UNAUTHENTICATED" }), "UNAUTHENTICATED"],
    [Object.assign(new Error("403"), { code: "PERMISSION_DENIED" }), "PERMISSION_DENIED"],
    [new Error("UNAVAILABLE: registry-1.docker.io: connection refused"), "UNAVAILABLE"],
    [new Error("DATA_LOSS: layer sha256:ab digest mismatch"), "DATA_LOSS"],
    [Object.assign(new Error("RESOURCE_EXHAUSTED: disk full"), { code: "RESOURCE_EXHAUSTED" }), "RESOURCE_EXHAUSTED"],
    [Object.assign(new Error("no space left"), { code: "ENOSPC" }), "RESOURCE_EXHAUSTED"],
    [Object.assign(new Error("tar entry escapes"), { code: "INVALID_ARGUMENT" }), "INVALID_ARGUMENT"],
    [new Error("something odd"), "INTERNAL"],
    ["a thrown string", "INTERNAL"],
  ];
  for (const [error, code] of cases) {
    engine.failNext("node:20", error);
    const err = await t.throwsAsync(images.pull("node:20"), { instanceOf: VmctlError });
    t.is(err?.code, code, String(error));
    const prefix = code === "INVALID_ARGUMENT" ? "image: pulling node:20: " : `pulling node:20: ${code}: `;
    t.true(err?.message.startsWith(prefix), err?.message);
    t.false(/: [A-Z_]+: [A-Z_]+:/.test(err?.message ?? ""), err?.message);
    if (code === "INVALID_ARGUMENT") t.is(err?.details.field, "image");
  }
  const notPublished = await t.throwsAsync(images.pull("nothing:here"), { instanceOf: VmctlError });
  t.is(notPublished?.message, "pulling nothing:here: NOT_FOUND: manifest unknown: nothing:here");
  t.deepEqual(images.list(), []);
});

test("without an engine: pulls and use fail FAILED_PRECONDITION, the rest works", async (t) => {
  const { images, service } = setup({ engine: false });
  t.false(images.hasEngine);
  const err = await t.throwsAsync(images.pull("node:20"), { instanceOf: VmctlError });
  t.is(err?.code, "FAILED_PRECONDITION");
  t.is(err?.message, NO_IMAGE_ENGINE);
  const id = service("cccccccccccccccc");
  t.is((await t.throwsAsync(images.access(id).use("node:20")))?.message, NO_IMAGE_ENGINE);
  t.is((await t.throwsAsync(images.access(id).createWritableLayer("/tmp/x.ext4", 1 << 20)))?.message, NO_IMAGE_ENGINE);
  t.deepEqual(images.list(), []);
  t.deepEqual(await images.prune(), { removed: [], reclaimedBytes: 0 });
});

type ReferenceMethod = "pull" | "resolve" | "use" | "access" | "find" | "inspect" | "remove";
const REFERENCE_METHODS: readonly ReferenceMethod[] = ["pull", "resolve", "use", "access", "find", "inspect", "remove"];

/** Calls `method` of the store with `reference`, reporting errors against `field` (the default when undefined). */
function callWith(images: ImageStore, serviceId: string, method: ReferenceMethod, reference: string, field: string | undefined): Promise<unknown> {
  const options = field === undefined ? {} : { field };
  return (async () => {
    if (method === "pull") return images.pull(reference, options);
    if (method === "resolve") return images.resolve(reference, undefined, options);
    if (method === "use") return images.use(serviceId, reference, undefined, options);
    if (method === "access") return images.access(serviceId, options).use(reference);
    if (method === "find") return images.find(reference, options);
    if (method === "inspect") return images.inspect(reference, options);
    return images.remove(reference, options);
  })();
}

test("property: hostile references reach no engine and fail as INVALID_ARGUMENT on the caller's field (image by default)", async (t) => {
  const { images, engine, service } = setup();
  const id = service("dddddddddddddddd");
  const hostile = fc.oneof(
    fc.string({ unit: fc.constantFrom("\0", "\u0001", "\n", "\u009b", "\uDC00", "a", ":"), minLength: 1, maxLength: 30 }).filter((s) => /[\u0000-\u001f\u007f-\u009f\uD800-\uDFFF]/.test(s)),
    fc.string({ unit: fc.constantFrom(" ", "\u00a0", "é", "a", ":", "/"), minLength: 1, maxLength: 30 }).filter((s) => /[^\x21-\x7e]/.test(s)),
    fc.constant(""),
    fc.integer({ min: 4097, max: 100_000 }).map((n) => "n".repeat(n)),
  );
  await fc.assert(
    fc.asyncProperty(hostile, fc.constantFrom(...REFERENCE_METHODS), fc.constantFrom(undefined, "reference", "run.image"), async (reference, method, field) => {
      try {
        await callWith(images, id, method, reference, field);
        return false;
      } catch (err) {
        return err instanceof VmctlError && err.code === "INVALID_ARGUMENT" && err.details.field === (field ?? "image") && err.message.length < 300;
      }
    }),
    { numRuns: 300 },
  );
  t.is(engine.requests.length, 0);
});

test("the store's own errors about a reference name the caller's field too: not held, a digest alone, in use, the engine's INVALID_ARGUMENT", async (t) => {
  const { images, engine, service } = setup();
  const id = service("eeeeeeeeeeeeeeee");
  engine.publish("node:20", NODE20);
  const image = await images.use(id, "node:20");
  const failure = async (call: () => unknown): Promise<VmctlError | undefined> => t.throwsAsync(async () => call(), { instanceOf: VmctlError });

  for (const field of ["reference", undefined]) {
    const named = field ?? "image";
    const options = field === undefined ? {} : { field };
    // Not held: NOT_FOUND saying the reference, naming the field.
    for (const method of ["inspect", "remove"] as const) {
      const err = await failure(() => callWith(images, id, method, "node:18", field));
      t.is(err?.code, "NOT_FOUND");
      t.is(err?.message, "no image node:18");
      t.is(err?.details.field, named, `${method} ${named}`);
    }
    // A digest alone is never pulled.
    for (const method of ["pull", "resolve", "use", "access"] as const) {
      const err = await failure(() => callWith(images, id, method, `sha256:${"1".repeat(64)}`, field));
      t.is(err?.code, "NOT_FOUND");
      t.regex(err?.message ?? "", /sha256:1111/);
      t.is(err?.details.field, named, `${method} ${named}`);
    }
    // The engine refusing the reference (or the archive it names).
    for (const method of ["pull", "resolve", "use", "access"] as const) {
      engine.failNext("bad:ref", Object.assign(new Error("no linux/amd64 image in the index"), { code: "INVALID_ARGUMENT" }));
      const err = await failure(() => callWith(images, id, method, "bad:ref", field));
      t.is(err?.code, "INVALID_ARGUMENT");
      t.is(err?.details.field, named, `${method} ${named}`);
    }
    // A VmctlError from the engine keeps its details, but the field is the caller's.
    engine.failNext("bad:ref", new VmctlError("INVALID_ARGUMENT", "tar entry escapes", { details: { field: "image", target: "microvm" } }));
    const kept = await failure(() => images.pull("bad:ref", options));
    t.deepEqual(kept?.details, { field: named, target: "microvm" });
    // In use by a service: FAILED_PRECONDITION on the field.
    const inUse = await failure(() => images.remove("node:20", options));
    t.is(inUse?.code, "FAILED_PRECONDITION");
    t.is(inUse?.details.field, named);
  }
  t.is(images.inspect("node:20", { field: "reference" }).digest, image.digest);
  t.is(images.find("docker.io/library/node:20", { field: "reference" })?.digest, image.digest);
});

test("createWritableLayer goes to the engine; a bad path or size is refused first", async (t) => {
  const { images, engine, stateDir } = setup();
  const path = join(stateDir, "rw.ext4");
  await images.access("x").createWritableLayer(path, 1 << 20);
  t.deepEqual(engine.writableLayers, [path]);
  t.is((await t.throwsAsync(images.createWritableLayer("relative.ext4", 1), { instanceOf: VmctlError }))?.code, "INVALID_ARGUMENT");
  t.is((await t.throwsAsync(images.createWritableLayer(path, 0), { instanceOf: VmctlError }))?.code, "INVALID_ARGUMENT");
});
