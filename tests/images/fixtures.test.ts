// Proves the image fixtures themselves: layouts built with real tools, pushed to a real
// registry (with and without auth), unpacked by umoci to the tree the layers describe, and
// tree diffs that see what they should. Nothing is skipped: a missing tool fails the test.
import test, { type ExecutionContext } from "ava";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  buildBenchImage,
  buildImage,
  buildMultiPlatformImage,
  type BuiltImage,
  inspect,
  inspectRaw,
  type LayerSpec,
  layoutBlobPath,
  push,
  saveDockerArchive,
} from "./fixtures/image-builder.js";
import { startRegistry, type Registry } from "./fixtures/registry.js";
import { run, ToolError } from "./fixtures/run.js";
import { diffTrees, snapshotTree, type TreeSnapshot } from "./fixtures/tree-compare.js";
import { umociUnpackBundle } from "./fixtures/umoci.js";
import { LONG_NAME, TEST_IMAGE } from "./fixtures/test-image.js";

async function buildTestImage(t: ExecutionContext, tag = "v1"): Promise<BuiltImage> {
  const image = await buildImage(TEST_IMAGE, { tag });
  t.teardown(() => image.remove());
  return image;
}

async function registry(t: ExecutionContext, auth?: { user: string; password: string }): Promise<Registry> {
  const started = await startRegistry(auth === undefined ? {} : { auth });
  t.teardown(() => started.stop());
  return started;
}

function tempDir(t: ExecutionContext, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function node(tree: TreeSnapshot, path: string) {
  const found = tree.get(path);
  if (found === undefined) throw new Error(`${path} missing from the tree`);
  return found;
}

const sha = (text: string): string => execFileSync("sha256sum", { input: text }).toString().slice(0, 64);

test("the layout is a valid OCI image: media types, diff_ids, tag annotation", async (t) => {
  const image = await buildTestImage(t);
  t.deepEqual(
    image.layers.map((l) => l.mediaType),
    [
      "application/vnd.oci.image.layer.v1.tar+gzip",
      "application/vnd.oci.image.layer.v1.tar+zstd",
      "application/vnd.oci.image.layer.v1.tar",
    ],
  );
  const config = JSON.parse(readFileSync(layoutBlobPath(image.layoutDir, image.config.digest), "utf8")) as {
    architecture: string;
    os: string;
    config: Record<string, unknown>;
    rootfs: { diff_ids: string[] };
  };
  t.is(config.architecture, "amd64");
  t.is(config.os, "linux");
  t.deepEqual(config.config, { Entrypoint: ["/usr/bin/suid"], Env: ["A=1"], WorkingDir: "/etc", User: "0:0", Labels: { l: "v" } });
  t.deepEqual(config.rootfs.diff_ids, image.layers.map((l) => l.diffId));
  // The uncompressed layer's digest is its diff_id; the tar keeps the described order.
  const top = image.layers[2];
  t.is(top?.digest, top?.diffId);
  const tarList = (digest: string, flag: string): string[] =>
    execFileSync("tar", [flag, "-tf", layoutBlobPath(image.layoutDir, digest)]).toString().trim().split("\n");
  t.deepEqual(tarList(image.layers[1]?.digest ?? "", "--zstd").slice(0, 5), ["etc/", "etc/.wh.gone", "opq/", "opq/.wh..wh..opq", "opq/new"]);
  t.true(tarList(image.layers[0]?.digest ?? "", "-z").includes(LONG_NAME));
  const index = JSON.parse(readFileSync(join(image.layoutDir, "index.json"), "utf8")) as { manifests: Array<{ digest: string; annotations: Record<string, string> }> };
  t.deepEqual(index.manifests.map((m) => [m.digest, m.annotations["org.opencontainers.image.ref.name"]]), [[image.manifest.digest, "v1"]]);
  // Reproducible: the same description gives the same digest.
  const again = await buildTestImage(t, "v1");
  t.is(again.manifest.digest, image.manifest.digest);
});

test("umoci unpacks the image to the tree the layers describe", async (t) => {
  const image = await buildTestImage(t);
  const bundle = await umociUnpackBundle(image.layoutDir, image.tag);
  t.teardown(() => bundle.remove());
  const tree = await snapshotTree(bundle.rootfs);

  t.false(tree.has("etc/gone"), "whiteout deletes the file");
  t.false([...tree.keys()].some((p) => p.includes(".wh.")), "no whiteout files are left");
  t.deepEqual([...tree.keys()].filter((p) => p.startsWith("opq/")), ["opq/new"], "the opaque marker hides the lower dir's content");
  t.false(tree.has("data/source"));
  t.like(node(tree, "data/link"), { type: "file", sha256: sha("shared by a hard link\n"), uid: 1000, gid: 1000, mode: 0o640 });
  t.is(node(tree, "data/link").nlinkGroup, undefined, "the survivor is a single link");
  t.like(node(tree, "change/file2dir"), { type: "dir", mode: 0o750 });
  t.true(tree.has("change/file2dir/child"));
  t.like(node(tree, "change/dir2link"), { type: "symlink", linkTarget: "/usr/bin" });
  t.false(tree.has("change/dir2link/inner"));
  t.like(node(tree, "change/link2file"), { type: "file", sha256: sha("was a symlink\n") });
  t.like(node(tree, "usr/bin/suid"), { type: "file", mode: 0o4755 });
  t.like(node(tree, "usr/bin/sgid"), { mode: 0o2750, gid: 42 });
  t.like(node(tree, "tmp"), { type: "dir", mode: 0o1777 });
  t.like(node(tree, "dev/null"), { type: "chardev", rdev: { major: 1, minor: 3 }, mode: 0o666 });
  t.like(node(tree, "dev/pipe"), { type: "fifo", mode: 0o600 });
  t.like(node(tree, "dev/loop0"), { type: "blockdev", rdev: { major: 7, minor: 0 }, gid: 6 });
  t.like(node(tree, LONG_NAME), { type: "file", sha256: sha("a long name\n") });
  t.deepEqual(node(tree, "etc/kept").xattrs, { "user.vmctl": "hello" });
  t.like(node(tree, "etc/added"), { type: "file" });
});

test("diffTrees finds nothing between a tree and its cp -a copy, and each deliberate change", async (t) => {
  const image = await buildTestImage(t);
  const bundle = await umociUnpackBundle(image.layoutDir, image.tag);
  t.teardown(() => bundle.remove());
  const copy = join(tempDir(t, "vmctl-test-copy-"), "rootfs");
  execFileSync("cp", ["-a", bundle.rootfs, copy]);
  // Hard links, to see that nlinkGroup survives a copy and is compared.
  execFileSync("ln", [join(bundle.rootfs, "etc/added"), join(bundle.rootfs, "etc/added-link")]);
  execFileSync("ln", [join(copy, "etc/added"), join(copy, "etc/added-link")]);
  const original = await snapshotTree(bundle.rootfs);
  t.deepEqual(node(original, "etc/added").nlinkGroup, ["etc/added", "etc/added-link"]);
  t.deepEqual(diffTrees(original, await snapshotTree(copy)), []);

  chmodSync(join(copy, "usr/bin/suid"), 0o755);
  writeFileSync(join(copy, "etc/kept"), "KEPT\n");
  unlinkSync(join(copy, "etc/added-link"));
  execFileSync("setfattr", ["-n", "user.vmctl", "-v", "changed", join(copy, "etc/kept")]);
  chmodSync(copy, 0o700);
  t.deepEqual(diffTrees(original, await snapshotTree(copy), { a: "umoci", b: "copy" }), [
    ".: mode 0755 vs 0700",
    "etc/added: hard links [etc/added, etc/added-link] vs []",
    "only in umoci: etc/added-link",
    `etc/kept: content sha256 ${sha("kept\n")} vs ${sha("KEPT\n")}`,
    `etc/kept: xattr user.vmctl "hello" vs "changed"`,
    "usr/bin/suid: mode 4755 vs 0755",
  ]);
});

test("push to a registry keeps the digests; the registry stores the blobs as built", async (t) => {
  const image = await buildTestImage(t);
  const reg = await registry(t);
  const pushed = await push(image.layoutDir, image.tag, reg);
  t.is(pushed.digest, image.manifest.digest);
  t.is(pushed.reference, `${reg.host}/vmctl-test/image:v1`);
  const remote = await inspectRaw(pushed.reference);
  t.is(remote.digest, image.manifest.digest);
  t.is((await inspect(pushed.reference)).Digest, image.manifest.digest);
  for (const layer of image.layers) {
    t.is(statSync(reg.blobPath(layer.digest)).size, layer.size, `${layer.mediaType} stored unchanged`);
  }
  // blobPath is the file the registry serves: corrupt it and a verifying client refuses it.
  const config = reg.blobPath(image.config.digest);
  writeFileSync(config, readFileSync(config).toString().replace("amd64", "arm64"));
  const pulled = join(tempDir(t, "vmctl-test-pull-"), "image");
  await t.throwsAsync(
    run("skopeo", ["--insecure-policy", "copy", "--src-tls-verify=false", "--src-no-creds", `docker://${pushed.reference}`, `dir:${pulled}`]),
    { message: /digest/i },
  );
  // Deletes are enabled (the engine's tests remove manifests to provoke 404s).
  const manifestUrl = `${reg.url}/v2/vmctl-test/image/manifests/${image.manifest.digest}`;
  t.is((await fetch(manifestUrl, { method: "DELETE" })).status, 202);
  t.is((await fetch(manifestUrl, { headers: { accept: "application/vnd.oci.image.manifest.v1+json" } })).status, 404);
});

test("a registry with auth refuses a push without credentials and takes one with them", async (t) => {
  const image = await buildTestImage(t);
  const creds = { user: "tester", password: "s3cret" };
  const reg = await registry(t, creds);
  t.deepEqual(reg.auth, creds);
  const refused = await t.throwsAsync(push(image.layoutDir, image.tag, reg), { instanceOf: ToolError });
  t.regex(refused?.message ?? "", /unauthorized|authentication required/i);
  const pushed = await push(image.layoutDir, image.tag, reg, { creds });
  t.is((await inspectRaw(pushed.reference, { creds })).digest, image.manifest.digest);
  await t.throwsAsync(inspectRaw(pushed.reference));
});

test("multi-platform images: an index with amd64 and arm64, and one without amd64", async (t) => {
  const small = (arch: string): LayerSpec[] => [{ entries: [{ path: "arch", type: "file", content: `${arch}\n` }] }];
  const multi = await buildMultiPlatformImage(
    [
      { platform: { os: "linux", architecture: "arm64", variant: "v8" }, image: { layers: small("arm64") } },
      { platform: { os: "linux", architecture: "amd64" }, image: { layers: small("amd64") } },
    ],
    { tag: "multi" },
  );
  t.teardown(() => multi.remove());
  const armOnly = await buildMultiPlatformImage(
    [{ platform: { os: "linux", architecture: "arm64" }, image: { layers: small("arm64") } }],
    { tag: "arm-only", layoutDir: multi.layoutDir },
  );
  const reg = await registry(t);

  const pushed = await push(multi.layoutDir, "multi", reg, { all: true });
  t.is(pushed.indexDigest, multi.index.digest);
  t.is(pushed.manifestDigest, multi.images[1]?.manifest.digest);
  t.is((await inspectRaw(pushed.reference)).digest, multi.index.digest);
  const host = await inspect(pushed.reference);
  t.is(host.Digest, multi.index.digest, "skopeo inspect reports the index's digest");
  t.is(host.Architecture, "amd64", "and the host's platform from it");
  t.deepEqual(host.Layers, multi.images[1]?.layers.map((l) => l.digest));

  await t.throwsAsync(push(multi.layoutDir, "arm-only", reg), { message: /linux\/amd64/ });
  const arm = await push(armOnly.layoutDir, "arm-only", reg, { all: true });
  t.is(arm.manifestDigest, undefined);
  t.is((await inspectRaw(arm.reference)).digest, armOnly.index.digest);
  await t.throwsAsync(inspect(arm.reference), { message: /no image found in (image index|manifest list) for architecture amd64/i });
});

test("saveDockerArchive writes a docker save archive of the image", async (t) => {
  const image = await buildTestImage(t);
  const archive = join(tempDir(t, "vmctl-test-archive-"), "image.tar");
  await saveDockerArchive(image.layoutDir, image.tag, archive);
  const manifest = JSON.parse(execFileSync("tar", ["-xOf", archive, "manifest.json"]).toString()) as Array<{
    Config: string;
    RepoTags: string[];
    Layers: string[];
  }>;
  t.is(manifest.length, 1);
  // skopeo writes the normalised name (docker save would write "vmctl-test/image:v1").
  t.deepEqual(manifest[0]?.RepoTags, ["docker.io/vmctl-test/image:v1"]);
  t.is(manifest[0]?.Layers.length, 3);
  t.is(manifest[0]?.Config, `${image.config.digest.slice("sha256:".length)}.json`, "the image ID is the layout's config");
});

test("the bench image: ~50 MiB in three layers, reproducible from its seed", async (t) => {
  const started = Date.now();
  const image = await buildBenchImage({ seed: "fixtures-test" });
  t.teardown(() => image.remove());
  const built = Date.now() - started;
  const total = image.layers.reduce((sum, l) => sum + l.uncompressedSize, 0);
  t.log(`bench image: ${(total / 2 ** 20).toFixed(1)} MiB uncompressed, ${(image.layers.reduce((s, l) => s + l.size, 0) / 2 ** 20).toFixed(1)} MiB compressed, built in ${built} ms`);
  t.is(image.layers.length, 3);
  t.true(total > 45 * 2 ** 20 && total < 60 * 2 ** 20, `${total} bytes`);
  const again = await buildBenchImage({ seed: "fixtures-test", tag: "again", layoutDir: image.layoutDir });
  t.is(again.manifest.digest, image.manifest.digest);
});

test("registry.stop is idempotent and leaves nothing behind", async (t) => {
  const reg = await startRegistry();
  t.true(existsSync(reg.storageDir) || existsSync(join(reg.storageDir, "..")));
  const pids = execFileSync("pgrep", ["-f", `docker-registry serve ${join(reg.storageDir, "../config.yml")}`], { encoding: "utf8" });
  t.not(pids.trim(), "");
  await reg.stop();
  await reg.stop();
  t.false(existsSync(join(reg.storageDir, "..")));
  t.throws(() => execFileSync("pgrep", ["-f", `docker-registry serve ${join(reg.storageDir, "../config.yml")}`]));
  await t.throwsAsync(fetch(`${reg.url}/v2/`));
});
