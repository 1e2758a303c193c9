// The native image engine (@vmctl/native, Rust) against a real registry on loopback
// (Debian's docker-registry, images pushed with skopeo from trees built here): pulls by
// tag and digest, a multi-arch index, auth, zstd, corrupt and missing blobs, registries
// that fail, docker-archive and OCI-layout imports — every unpacked tree compared file by
// file with `umoci unpack` of the same image, and the base disk read back with e2fsprogs.
import test, { type ExecutionContext } from "ava";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createWritableLayer, prepareImage, unpackLayers, type NativeImageProgress, type PreparedImage } from "@vmctl/native";
import { buildImage, buildMultiPlatformImage, push, saveDockerArchive, type BuiltImage, type LayerSpec } from "./fixtures/image-builder.js";
import { startFaultyRegistry, type Fault } from "./fixtures/faulty-registry.js";
import { startRegistry, type Registry } from "./fixtures/registry.js";
import { TEST_IMAGE } from "./fixtures/test-image.js";
import { diffTrees, snapshotTree } from "./fixtures/tree-compare.js";
import { umociUnpackBundle } from "./fixtures/umoci.js";

function tempDir(t: ExecutionContext, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function testImage(t: ExecutionContext, tag = "v1"): Promise<BuiltImage> {
  const image = await buildImage(TEST_IMAGE, { tag });
  t.teardown(() => image.remove());
  return image;
}

async function registry(t: ExecutionContext, auth?: { user: string; password: string }): Promise<Registry> {
  const started = await startRegistry(auth === undefined ? {} : { auth });
  t.teardown(() => started.stop());
  return started;
}

async function prepare(store: string, source: string, extra: { dockerConfig?: string; timeoutMs?: number } = {}) {
  const events: NativeImageProgress[] = [];
  const image = await prepareImage({ storeDir: store, source, ...extra }, (e) => events.push(e));
  return { image, events };
}

/** The image's layers unpacked by the engine, compared with umoci's unpack of the layout. */
async function assertSameTreeAsUmoci(t: ExecutionContext, store: string, prepared: PreparedImage, layout: BuiltImage): Promise<void> {
  const ours = join(tempDir(t, "vmctl-test-ours-"), "rootfs");
  execFileSync("mkdir", [ours]);
  await unpackLayers({ storeDir: store, layers: prepared.layers.map((l) => l.digest), dest: ours });
  const bundle = await umociUnpackBundle(layout.layoutDir, layout.tag);
  t.teardown(() => bundle.remove());
  const theirs = await snapshotTree(bundle.rootfs);
  t.true(theirs.size > 20, `umoci's tree has ${theirs.size} entries`);
  t.deepEqual(diffTrees(await snapshotTree(ours), theirs, { a: "vmctl", b: "umoci" }), []);
}

/** What must hold of a store after any failed prepare: no disk, only verified blobs, no scratch. */
function assertNothingHalfMade(t: ExecutionContext, store: string): void {
  t.deepEqual(existsSync(join(store, "disks")) ? readdirSync(join(store, "disks")) : [], [], "no base disk");
  const blobs = join(store, "blobs/sha256");
  for (const name of existsSync(blobs) ? readdirSync(blobs) : []) {
    t.is(createHash("sha256").update(readFileSync(join(blobs, name))).digest("hex"), name, `blob ${name} is what its name says`);
  }
  t.deepEqual(existsSync(join(store, "tmp")) ? readdirSync(join(store, "tmp")) : [], [], "no scratch left");
}

const debugfs = (disk: string, request: string): string =>
  execFileSync("debugfs", ["-R", request, disk], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });

test("a pull by tag: three layers (gzip, zstd, plain) unpack to umoci's tree; the ext4 base disk holds it", async (t) => {
  const layout = await testImage(t);
  const reg = await registry(t);
  const pushed = await push(layout.layoutDir, layout.tag, reg);
  const store = tempDir(t, "vmctl-test-store-");
  const { image, events } = await prepare(store, pushed.reference);

  t.is(image.digest, layout.manifest.digest);
  t.deepEqual(image.names, [`${reg.host}/vmctl-test/image:v1`]);
  t.deepEqual(image.layers.map((l) => l.digest), layout.layers.map((l) => l.digest));
  t.deepEqual(image.config, { entrypoint: ["/usr/bin/suid"], cmd: [], env: ["A=1"], workingDir: "/etc", user: "0:0", labels: { l: "v" } });
  t.is(image.disk, join(store, "disks", `${image.digest.slice(7)}.ext4`));
  t.is(statSync(image.disk).mode & 0o777, 0o444, "the base disk is read-only");
  for (const layer of layout.layers) {
    t.true(events.some((e) => e.phase === "download" && e.layer === layer.digest && e.current === layer.size && e.total === layer.size), `download progress of ${layer.digest}`);
    t.true(events.some((e) => e.phase === "done" && e.layer === layer.digest));
  }
  t.is(events.at(-1)?.phase, "ready");
  await assertSameTreeAsUmoci(t, store, image, layout);

  // The disk, read with e2fsprogs: a clean file system with the tree's owners and modes.
  execFileSync("e2fsck", ["-fn", image.disk], { stdio: "ignore" });
  t.is(debugfs(image.disk, "cat /etc/added"), "from the top layer\n");
  t.regex(debugfs(image.disk, "stat /usr/bin/suid"), /Mode:\s+04755/);
  t.regex(debugfs(image.disk, "stat /dev/null"), /Type: character special/);
  t.regex(debugfs(image.disk, "stat /data/link"), /User:\s+1000\s+Group:\s+1000/);
  t.notRegex(debugfs(image.disk, "ls /etc"), /gone|\.wh\./);
});

test("a pull by digest is the same image; a second pull downloads nothing", async (t) => {
  const layout = await testImage(t);
  const reg = await registry(t);
  await push(layout.layoutDir, layout.tag, reg);
  const store = tempDir(t, "vmctl-test-store-");
  const byDigest = await prepare(store, `${reg.host}/vmctl-test/image@${layout.manifest.digest}`);
  t.is(byDigest.image.digest, layout.manifest.digest);
  t.deepEqual(byDigest.image.names, [`${reg.host}/vmctl-test/image@${layout.manifest.digest}`]);
  const again = await prepare(store, `docker://${reg.host}/vmctl-test/image:v1`);
  t.is(again.image.disk, byDigest.image.disk);
  t.false(again.events.some((e) => e.phase === "download" || e.phase === "unpack"), "nothing fetched or unpacked again");
  t.is(again.events.filter((e) => e.phase === "exists").length, 3);
});

test("a multi-arch index resolves to linux/amd64; an index without it is refused naming what it has", async (t) => {
  const small = (arch: string): LayerSpec[] => [{ entries: [{ path: "arch", type: "file", content: `${arch}\n` }] }];
  const multi = await buildMultiPlatformImage(
    [
      { platform: { os: "linux", architecture: "arm64", variant: "v8" }, image: { layers: small("arm64") } },
      { platform: { os: "linux", architecture: "amd64" }, image: { layers: small("amd64") } },
    ],
    { tag: "multi" },
  );
  t.teardown(() => multi.remove());
  await buildMultiPlatformImage([{ platform: { os: "linux", architecture: "arm64" }, image: { layers: small("arm64") } }], {
    tag: "arm-only",
    layoutDir: multi.layoutDir,
  });
  const reg = await registry(t);
  const pushed = await push(multi.layoutDir, "multi", reg, { all: true });
  const store = tempDir(t, "vmctl-test-store-");
  const { image } = await prepare(store, pushed.reference);
  t.is(image.digest, multi.images[1]?.manifest.digest ?? "(no amd64 image)");
  t.true(image.blobs.includes(multi.index.digest as string), "the index is kept with the image");
  t.is(debugfs(image.disk, "cat /arch"), "amd64\n");

  const arm = await push(multi.layoutDir, "arm-only", reg, { all: true });
  const other = tempDir(t, "vmctl-test-store-");
  const err = await t.throwsAsync(prepare(other, arm.reference));
  t.regex(err?.message ?? "", /^INVALID_ARGUMENT: .*no linux\/amd64 image \(it has: linux\/arm64\)/);
  assertNothingHalfMade(t, other);
});

test("a registry with auth: no credentials is UNAUTHENTICATED; the Docker config's are used", async (t) => {
  const layout = await testImage(t);
  const creds = { user: "tester", password: "s3cret" };
  const reg = await registry(t, creds);
  const pushed = await push(layout.layoutDir, layout.tag, reg, { creds });
  const store = tempDir(t, "vmctl-test-store-");
  const config = join(tempDir(t, "vmctl-test-docker-"), "config.json");
  writeFileSync(config, JSON.stringify({ auths: {} }));
  const refused = await t.throwsAsync(prepare(store, pushed.reference, { dockerConfig: config }));
  t.regex(refused?.message ?? "", /^UNAUTHENTICATED: .*vmctl-test\/image:v1/);
  assertNothingHalfMade(t, store);

  const auth = Buffer.from(`${creds.user}:${creds.password}`).toString("base64");
  writeFileSync(config, JSON.stringify({ auths: { [reg.host]: { auth } } }));
  const { image } = await prepare(store, pushed.reference, { dockerConfig: config });
  t.is(image.digest, layout.manifest.digest);
});

test("a corrupted blob is refused by its digest and nothing of the image becomes visible", async (t) => {
  const layout = await testImage(t);
  const reg = await registry(t);
  const pushed = await push(layout.layoutDir, layout.tag, reg);
  const victim = layout.layers[1];
  if (victim === undefined) throw new Error("the test image has three layers");
  const stored = reg.blobPath(victim.digest);
  const bytes = readFileSync(stored);
  bytes.writeUInt8(bytes.readUInt8(bytes.length >> 1) ^ 0xff, bytes.length >> 1);
  writeFileSync(stored, bytes);
  const store = tempDir(t, "vmctl-test-store-");
  const err = await t.throwsAsync(prepare(store, pushed.reference));
  t.regex(err?.message ?? "", new RegExp(`^DATA_LOSS: blob ${victim.digest}: content has digest sha256:[0-9a-f]{64} \\(corrupted\\)`));
  t.false(existsSync(join(store, "blobs/sha256", victim.digest.slice(7))));
  assertNothingHalfMade(t, store);

  // A truncated blob: the registry serves fewer bytes than the manifest promises.
  writeFileSync(stored, bytes.subarray(0, bytes.length >> 1));
  const cut = await t.throwsAsync(prepare(store, pushed.reference));
  t.regex(cut?.message ?? "", /^DATA_LOSS: /);
  assertNothingHalfMade(t, store);
});

test("images and tags that do not exist are NOT_FOUND naming the reference", async (t) => {
  const layout = await testImage(t);
  const reg = await registry(t);
  await push(layout.layoutDir, layout.tag, reg);
  const store = tempDir(t, "vmctl-test-store-");
  for (const ref of [`${reg.host}/vmctl-test/image:nope`, `${reg.host}/no/such-repo:v1`, `${reg.host}/vmctl-test/image@sha256:${"0".repeat(64)}`]) {
    const err = await t.throwsAsync(prepare(store, ref));
    t.true(err?.message.startsWith(`NOT_FOUND: ${ref.replace("@", "@")}`) || err?.message.startsWith("NOT_FOUND: "), err?.message);
    t.true(err?.message.includes(ref.split("@")[0]?.split(":v1")[0] ?? ref), `${err?.message} names ${ref}`);
  }
  for (const source of [`oci:${join(store, "missing")}`, `docker-archive:${join(store, "missing.tar")}`]) {
    t.regex((await t.throwsAsync(prepare(store, source)))?.message ?? "", /^NOT_FOUND: .*missing/);
  }
  assertNothingHalfMade(t, store);
});

for (const [fault, expected] of [
  [{ status: 500 }, /^UNAVAILABLE: .*the registry answered HTTP 500/],
  [{ status: 403 }, /^PERMISSION_DENIED: .*denied/],
  [{ status: 401 }, /^UNAUTHENTICATED: /],
  ["hang", /^UNAVAILABLE: .*did not answer in time/],
] as const satisfies ReadonlyArray<readonly [Fault, RegExp]>) {
  test(`a registry answering ${fault === "hang" ? "nothing" : `HTTP ${fault.status}`} is one clear error and leaves nothing`, async (t) => {
    const faulty = await startFaultyRegistry(fault);
    t.teardown(() => faulty.stop());
    const store = tempDir(t, "vmctl-test-store-");
    const err = await t.throwsAsync(prepare(store, `${faulty.host}/app:1`, { timeoutMs: 500 }));
    t.regex(err?.message ?? "", expected);
    t.false((err?.message ?? "").includes("\n"), "one line");
    assertNothingHalfMade(t, store);
  });
}

test("a registry nobody listens on is UNAVAILABLE", async (t) => {
  const store = tempDir(t, "vmctl-test-store-");
  const err = await t.throwsAsync(prepare(store, "127.0.0.1:9/app:1", { timeoutMs: 1000 }));
  t.regex(err?.message ?? "", /^UNAVAILABLE: 127\.0\.0\.1:9\/app:1: cannot connect/);
});

test("a docker save archive and an OCI layout import to the same tree as umoci's", async (t) => {
  const layout = await testImage(t);
  const archive = join(tempDir(t, "vmctl-test-archive-"), "image.tar");
  await saveDockerArchive(layout.layoutDir, layout.tag, archive);
  const store = tempDir(t, "vmctl-test-store-");

  const fromLayout = await prepare(store, `oci:${layout.layoutDir}:${layout.tag}`);
  t.is(fromLayout.image.digest, layout.manifest.digest, "an OCI layout keeps its manifest digest");
  await assertSameTreeAsUmoci(t, store, fromLayout.image, layout);

  const fromArchive = await prepare(store, `docker-archive:${archive}`);
  t.deepEqual(fromArchive.image.names, ["docker.io/vmctl-test/image:v1"]);
  t.deepEqual(fromArchive.image.config, fromLayout.image.config);
  await assertSameTreeAsUmoci(t, store, fromArchive.image, layout);
  t.regex((await t.throwsAsync(prepare(store, `docker-archive:${archive}:other:tag`)))?.message ?? "", /^NOT_FOUND: .*no image named docker.io\/library\/other:tag/);
});

test("two images sharing a base layer store it once", async (t) => {
  const base: LayerSpec = { entries: [{ path: "base", type: "file", content: "shared base layer\n" }] };
  const a = await buildImage({ layers: [base, { entries: [{ path: "a", type: "file", content: "a\n" }] }] }, { tag: "a" });
  const b = await buildImage({ layers: [base, { entries: [{ path: "b", type: "file", content: "b\n" }] }] }, { tag: "b", layoutDir: a.layoutDir });
  t.teardown(() => a.remove());
  const reg = await registry(t);
  const pa = await push(a.layoutDir, "a", reg);
  const pb = await push(b.layoutDir, "b", reg);
  const store = tempDir(t, "vmctl-test-store-");
  await prepare(store, pa.reference);
  const second = await prepare(store, pb.reference);
  t.is(a.layers[0]?.digest, b.layers[0]?.digest);
  t.true(second.events.some((e) => e.phase === "exists" && e.layer === a.layers[0]?.digest), "the shared layer is not fetched again");
  // 2 manifests + 2 configs + 3 distinct layers.
  t.is(readdirSync(join(store, "blobs/sha256")).length, 7);
  t.is(readdirSync(join(store, "disks")).length, 2);
});

test("the writable layer: a sparse, clean ext4 of the asked size; writing to it leaves the base disk as it was", async (t) => {
  const layout = await testImage(t);
  const store = tempDir(t, "vmctl-test-store-");
  const { image } = await prepare(store, `oci:${layout.layoutDir}:${layout.tag}`);
  const baseSum = createHash("sha256").update(readFileSync(image.disk)).digest("hex");
  const upper = join(store, "upper.ext4");
  const size = 10 * 1024 ** 3;
  await createWritableLayer({ storeDir: store, path: upper, sizeBytes: size });
  const st = statSync(upper);
  t.is(st.size, size);
  t.true(st.blocks * 512 < 32 * 1024 ** 2, `${st.blocks * 512} bytes allocated of ${size}`);
  execFileSync("e2fsck", ["-fn", upper], { stdio: "ignore" });
  // A write on the layer (host-side tools: debugfs -w), then both disks read back.
  const payload = join(tempDir(t, "vmctl-test-payload-"), "hello");
  writeFileSync(payload, "written on the writable layer\n");
  execFileSync("debugfs", ["-w", "-R", `write ${payload} hello`, upper], { stdio: "ignore" });
  t.is(debugfs(upper, "cat /hello"), "written on the writable layer\n");
  t.is(createHash("sha256").update(readFileSync(image.disk)).digest("hex"), baseSum, "the base disk is unchanged");
  await t.throwsAsync(createWritableLayer({ storeDir: store, path: upper, sizeBytes: size }), { message: /^(INTERNAL|INVALID_ARGUMENT): .*exists/i });
  for (const bad of [0, 1024, 16 * 1024 ** 2 + 1, -1, 1.5, Number.NaN]) {
    await t.throwsAsync(createWritableLayer({ storeDir: store, path: join(store, `bad-${bad}.ext4`), sizeBytes: bad }), { message: /^INVALID_ARGUMENT: /, }, `${bad}`);
  }
});
