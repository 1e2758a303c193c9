// `vmctl pull / images / image inspect / rmi / image prune` end to end: the CLI, a real
// vmctld with the native image engine, and a real registry on loopback. Progress lines
// per layer (not a TTY here, so no escape codes), the built-in default image, a pull cut
// short by kill -9 of vmctld, and bad input.
import test, { type ExecutionContext } from "ava";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { requireGuestElf } from "../guests/harness.js";
import { Daemon, sandbox, teardown, until, vmctl, vmctlLive, type Sandbox } from "../orchestrator/helpers/sandbox.js";
import { buildBenchImage, buildImage, push, type BuiltImage } from "./fixtures/image-builder.js";
import { startRegistry, type Registry } from "./fixtures/registry.js";
import { TEST_IMAGE } from "./fixtures/test-image.js";

interface Setup {
  readonly sb: Sandbox;
  readonly daemon: Daemon;
  readonly store: string;
}

async function setup(t: ExecutionContext): Promise<Setup> {
  const sb = sandbox("vmctl-images-");
  const daemon = await Daemon.start(sb);
  const state = { daemons: [daemon] };
  t.teardown(() => teardown(sb, state.daemons));
  return { sb, daemon, store: join(sb.stateDir, "images") };
}

async function registry(t: ExecutionContext): Promise<Registry> {
  const reg = await startRegistry();
  t.teardown(() => reg.stop());
  return reg;
}

async function testImage(t: ExecutionContext): Promise<BuiltImage> {
  const image = await buildImage(TEST_IMAGE, { tag: "v1" });
  t.teardown(() => image.remove());
  return image;
}

const short = (digest: string): string => digest.slice("sha256:".length, "sha256:".length + 12);

/** Nothing half-made in the store: no scratch, every blob is what its name says. */
function assertStoreConsistent(t: ExecutionContext, store: string): void {
  t.deepEqual(existsSync(join(store, "tmp")) ? readdirSync(join(store, "tmp")) : [], [], "no scratch left");
  const blobs = join(store, "blobs/sha256");
  for (const name of existsSync(blobs) ? readdirSync(blobs) : []) {
    t.is(createHash("sha256").update(readFileSync(join(blobs, name))).digest("hex"), name, `blob ${name} is complete`);
  }
}

test("pull shows each layer's progress; images, image inspect, a second pull, rmi and prune", async (t) => {
  const [{ sb, store }, layout, reg] = await Promise.all([setup(t), testImage(t), registry(t)]);
  const pushed = await push(layout.layoutDir, layout.tag, reg);

  const pulled = await vmctl(sb, ["pull", pushed.reference]);
  t.is(pulled.code, 0, pulled.stderr);
  t.is(pulled.stdout, `${reg.host}/vmctl-test/image:v1\n`);
  const lines = pulled.stderr.split("\n");
  t.is(lines[0], "v1: Pulling from vmctl-test/image");
  for (const layer of layout.layers) {
    t.true(lines.includes(`${short(layer.digest)}: Download complete`), `${short(layer.digest)} downloaded:\n${pulled.stderr}`);
    t.true(lines.includes(`${short(layer.digest)}: Pull complete`), `${short(layer.digest)} unpacked`);
  }
  t.true(lines.includes(`Digest: ${layout.manifest.digest}`));
  t.true(lines.includes(`Status: Downloaded newer image for ${pushed.reference}`));
  t.false(pulled.stderr.includes("\u001b"), "no escape codes when stderr is not a terminal");

  const listed = await vmctl(sb, ["images", "--json"]);
  const images = JSON.parse(listed.stdout) as Array<{ digest: string; references: string[]; layers: unknown[]; diskBytes: number }>;
  t.is(images.length, 1);
  t.is(images[0]?.digest, layout.manifest.digest);
  t.deepEqual(images[0]?.references, [`${reg.host}/vmctl-test/image:v1`]);
  t.is(images[0]?.layers.length, 3);
  const table = await vmctl(sb, ["images"]);
  t.regex(table.stdout, /^REPOSITORY +TAG +DIGEST +CREATED +SIZE$/m);
  t.regex(table.stdout, new RegExp(`^${reg.host.replace(/\./g, "\\.")}/vmctl-test/image +v1 +${short(layout.manifest.digest)}`, "m"));
  const inspected = JSON.parse((await vmctl(sb, ["image", "inspect", pushed.reference])).stdout) as Array<{ config: { entrypoint: string[]; workingDir: string; user: string; env: string[] } }>;
  t.like(inspected[0]?.config, { entrypoint: ["/usr/bin/suid"], workingDir: "/etc", user: "0:0", env: ["A=1"] });

  const again = await vmctl(sb, ["pull", pushed.reference]);
  t.is(again.code, 0, again.stderr);
  for (const layer of layout.layers) t.true(again.stderr.includes(`${short(layer.digest)}: Already exists`));
  t.true(again.stderr.includes(`Status: Image is up to date for ${pushed.reference}`));

  const removed = await vmctl(sb, ["rmi", pushed.reference]);
  t.is(removed.code, 0, removed.stderr);
  t.is(removed.stdout, `Untagged: ${reg.host}/vmctl-test/image:v1\nDeleted: ${layout.manifest.digest}\n`);
  t.deepEqual(JSON.parse((await vmctl(sb, ["images", "--json"])).stdout), []);
  t.deepEqual(readdirSync(join(store, "disks")), [], "the base disk went with the image");
  t.deepEqual(readdirSync(join(store, "blobs/sha256")), [], "and so did its blobs");
  const missing = await vmctl(sb, ["rmi", pushed.reference]);
  t.not(missing.code, 0);
  t.is(missing.stderr.trim().split("\n").length, 1, missing.stderr);
  t.regex(missing.stderr, /vmctl-test\/image:v1/);

  // prune -a removes images no service uses.
  t.is((await vmctl(sb, ["pull", "-q", pushed.reference])).code, 0);
  const pruned = await vmctl(sb, ["image", "prune", "-a", "-f"]);
  t.is(pruned.code, 0, pruned.stderr);
  t.true(pruned.stdout.includes(layout.manifest.digest), pruned.stdout);
  t.deepEqual(JSON.parse((await vmctl(sb, ["images", "--json"])).stdout), []);
  assertStoreConsistent(t, store);
});

test("vmctl pull default: the built-in busybox image, with no registry", async (t) => {
  const { sb } = await setup(t);
  const pulled = await vmctl(sb, ["pull", "default"]);
  t.is(pulled.code, 0, pulled.stderr);
  t.is(pulled.stdout, "localhost/vmctl/default:latest\n");
  const [image] = JSON.parse((await vmctl(sb, ["image", "inspect", "default"])).stdout) as Array<{ digest: string; config: { cmd: string[]; env: string[] } }>;
  t.deepEqual(image?.config.cmd, ["/bin/sh"]);
  const disk = join(sb.stateDir, "images/disks", `${image?.digest.slice(7)}.ext4`);
  const stat = execFileSync("debugfs", ["-R", "stat /bin/sh", disk], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  t.regex(stat, /Type: symlink/);
  t.regex(stat, /Fast link dest: "\/bin\/busybox"/);
  // The same busybox gives the same image: a second build is the same digest.
  t.is((await vmctl(sb, ["rmi", "default"])).code, 0);
  t.is((await vmctl(sb, ["pull", "-q", "default"])).code, 0);
  const [rebuilt] = JSON.parse((await vmctl(sb, ["image", "inspect", "default"])).stdout) as Array<{ digest: string }>;
  t.is(rebuilt?.digest, image?.digest);
});

test("a pull cut short by kill -9 of vmctld leaves nothing visible, and the next vmctld cleans up", async (t) => {
  t.timeout(120_000);
  const { sb, daemon, store } = await setup(t);
  const reg = await registry(t);
  const bench = await buildBenchImage({ seed: "interrupted-pull" });
  t.teardown(() => bench.remove());
  const pushed = await push(bench.layoutDir, bench.tag, reg);

  const pull = vmctlLive(sb, ["pull", pushed.reference]);
  await until("the pull to start downloading", () => pull.errors().includes("Downloading") || pull.errors().includes("Download complete"));
  await daemon.kill9();
  const cut = await pull.done;
  t.not(cut.code, 0);

  const restarted = await Daemon.start(sb);
  t.teardown(() => restarted.stop());
  t.deepEqual(JSON.parse((await vmctl(sb, ["images", "--json"])).stdout), [], "a half-pulled image is never listed");
  t.deepEqual(readdirSync(join(store, "disks")), []);
  assertStoreConsistent(t, store);

  const retried = await vmctl(sb, ["pull", "-q", pushed.reference], { timeoutMs: 90_000 });
  t.is(retried.code, 0, retried.stderr);
  t.is((JSON.parse((await vmctl(sb, ["images", "--json"])).stdout) as unknown[]).length, 1);
});

test("a corrupted layer, a missing image and a dead registry: one line each, nothing left", async (t) => {
  const [{ sb, store }, layout, reg] = await Promise.all([setup(t), testImage(t), registry(t)]);
  const pushed = await push(layout.layoutDir, layout.tag, reg);
  const victim = reg.blobPath(layout.layers[0]?.digest ?? "");
  const bytes = readFileSync(victim);
  bytes.writeUInt8((bytes.readUInt8(10) ^ 0xff) & 0xff, 10);
  writeFileSync(victim, bytes);

  const cases: Array<[string[], RegExp]> = [
    [["pull", pushed.reference], new RegExp(`${layout.layers[0]?.digest}.*corrupted`)],
    [["pull", `${reg.host}/vmctl-test/image:missing`], /no such image/],
    [["pull", "127.0.0.1:9/app:1"], /cannot connect/],
    [["pull", "Not A Reference"], /reference/],
    [["pull", "é:1"], /reference/],
    [["rmi", "nothing-here:1"], /nothing-here/],
  ];
  for (const [args, message] of cases) {
    const result = await vmctl(sb, args);
    t.not(result.code, 0, args.join(" "));
    const errorLines = result.stderr.split("\n").filter((l) => l.startsWith("vmctl:"));
    t.is(errorLines.length, 1, `${args.join(" ")}: ${result.stderr}`);
    t.regex(errorLines[0] ?? "", message);
  }
  t.deepEqual(JSON.parse((await vmctl(sb, ["images", "--json"])).stdout), []);
  assertStoreConsistent(t, store);
});

test("vmctl run --target microvm IMAGE pulls with progress; the VM gets the image's disks; an image in use is not removed", async (t) => {
  t.timeout(90_000);
  const [{ sb, store }, layout, reg] = await Promise.all([setup(t), testImage(t), registry(t)]);
  const pushed = await push(layout.layoutDir, layout.tag, reg);
  const spec = JSON.stringify({ kernel: requireGuestElf(), bootArgs: "console=ttyS0 vmctl.test=ticker", memoryMib: 16 });
  const run = await vmctl(sb, ["run", "-d", "--name", "vm", "--target", "microvm", "--disk-size", "1G", "--spec", spec, pushed.reference], { timeoutMs: 60_000 });
  t.is(run.code, 0, run.stderr);
  for (const layer of layout.layers) t.true(run.stderr.includes(`${short(layer.digest)}: Pull complete`), run.stderr);
  const id = run.stdout.trim();
  const scratch = join(sb.stateDir, "services", id, "scratch.ext4");
  t.is(statSync(scratch).size, 1024 ** 3, "--disk-size sized the writable layer");
  const [image] = JSON.parse((await vmctl(sb, ["image", "inspect", pushed.reference])).stdout) as Array<{ usedBy: string[]; digest: string }>;
  t.deepEqual(image?.usedBy, [id]);

  const inUse = await vmctl(sb, ["rmi", pushed.reference]);
  t.not(inUse.code, 0);
  t.regex(inUse.stderr, /vm|in use|used/);
  t.is((await vmctl(sb, ["rm", "-f", "vm"])).code, 0);
  t.false(existsSync(scratch), "the writable layer went with the service");
  const base = join(store, "disks", `${layout.manifest.digest.slice(7)}.ext4`);
  t.true(existsSync(base), "the base disk stays with the image");
  t.is((await vmctl(sb, ["rmi", pushed.reference])).code, 0);
  t.false(existsSync(base));
  assertStoreConsistent(t, store);
});
