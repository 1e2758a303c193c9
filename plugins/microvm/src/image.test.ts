// A microVM from an OCI image, with the real image engine (@vmctl/native) behind a real
// ImageStore (through Orchestrator.open), the real vmctl-vmm and the test guests: the
// image's base disk is drive rootfs (read-only, /dev/vda), the VM's own sparse writable
// layer drive scratch (/dev/vdb). The images are OCI layouts built by the image tests'
// fixtures (GNU tar layers), referenced as `oci:DIR:TAG`.
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import * as native from "@vmctl/native";
import { Orchestrator, silentLogger, VmctlError, type ProgressEvent } from "@vmctl/core";
import { VmmClient } from "@vmctl/vmm-client";
import { DEFAULT_BOOT_ARGS } from "./factory.js";
import registration from "./index.js";
import { parseVmConfig, type VmConfig } from "./vm-config.js";
import { scratch, vmmsUnder } from "./testing/context.js";
import { imageFixtures } from "./testing/images.js";

const s = scratch("vmctl-mvm-image-");
test.after.always(() => s.cleanup());
const MIB = 1024 * 1024;
const { image, open, imageSpec } = imageFixtures(s);

function serviceDir(engine: Orchestrator, id: string): string {
  return join(engine.stateDir, "services", id);
}

function vmFile(engine: Orchestrator, id: string): VmConfig {
  const file = join(serviceDir(engine, id), "vm.json");
  return parseVmConfig(readFileSync(file, "utf8"), file);
}

/** The `key=value` facts a test guest printed. */
function facts(text: string): Record<string, string> {
  return Object.fromEntries([...text.matchAll(/^([a-z0-9_]+)=(\S*)$/gm)].map((m) => [m[1] as string, m[2] as string]));
}

async function consoleOf(engine: Orchestrator, id: string): Promise<string> {
  let out = "";
  for await (const chunk of engine.logs(id, { follow: true })) out += Buffer.from(chunk.data).toString();
  return out;
}

test("create with an image: the pull's progress reaches the sink; rootfs is the image's base disk read-only, scratch a sparse writable layer of diskSizeMib, then the user's drives", async (t) => {
  const img = await image();
  const engine = await open(t);
  const data = join(s.dir, "data.img");
  writeFileSync(data, Buffer.alloc(MIB));
  const events: ProgressEvent[] = [];
  const service = await engine.create(
    { target: "microvm", spec: imageSpec(img.ref, "ticker", { diskSizeMib: 64, drives: [{ id: "data", path: data, readOnly: true }] }) },
    { progress: (e) => events.push(e) },
  );
  // The pull, per layer (item = the layer's digest), as the store reports it.
  const layer = img.layers[0]?.digest;
  t.true(events.some((e) => e.item === layer), `progress names the layer: ${JSON.stringify(events)}`);
  t.true(events.some((e) => e.phase === "unpack"), "the unpack is reported");

  const held = engine.images.list();
  t.is(held.length, 1);
  const base = held[0]!;
  t.deepEqual(base.usedBy, [service.id], "the service pins the image");
  t.is(base.digest, img.manifest.digest);

  // vm.json: the digest and base disk resolved at prepare, the drives in bus order, root= added.
  const dir = serviceDir(engine, service.id);
  const vm = vmFile(engine, service.id);
  t.deepEqual(vm.image, { reference: img.ref, digest: base.digest, disk: base.disk, diskBytes: base.diskBytes });
  t.deepEqual(vm.scratch, { path: join(dir, "scratch.ext4"), sizeBytes: 64 * MIB });
  t.deepEqual(vm.drives, [
    { id: "rootfs", path: base.disk, readOnly: true, root: true },
    { id: "scratch", path: join(dir, "scratch.ext4"), readOnly: false },
    { id: "data", path: data, readOnly: true },
  ]);
  t.regex(vm.bootArgs, / root=\/dev\/vda ro$/);

  // The writable layer: exactly diskSizeMib apparent, a few blocks allocated (sparse).
  const st = statSync(join(dir, "scratch.ext4"));
  t.is(st.size, 64 * MIB);
  t.true(st.blocks * 512 < 4 * MIB, `allocated ${st.blocks * 512} bytes`);
  // ext4: the superblock's magic at 1024 + 0x38.
  t.is(readFileSync(join(dir, "scratch.ext4")).readUInt16LE(1024 + 0x38), 0xef53, "pre-formatted ext4");

  await engine.start(service.id);
  const vmm = JSON.parse(readFileSync(join(dir, "vmm.json"), "utf8")) as { socket: string };
  const client = new VmmClient(vmm.socket);
  t.teardown(() => client.close());
  t.deepEqual(await client.listDrives(), [
    { driveId: "rootfs", pathOnHost: base.disk, isReadOnly: true, isRootDevice: true },
    { driveId: "scratch", pathOnHost: join(dir, "scratch.ext4"), isReadOnly: false, isRootDevice: false },
    { driveId: "data", pathOnHost: data, isReadOnly: true, isRootDevice: false },
  ]);
  t.is(engine.get(service.id).phase, "running");

  await engine.stop(service.id, { timeoutMs: 0 });
  await engine.delete(service.id);
  t.false(existsSync(join(dir, "scratch.ext4")), "delete removes the writable layer");
  t.true(existsSync(base.disk), "the base disk is the image store's: it stays");
  t.deepEqual(engine.images.inspect(base.digest).usedBy, [], "no longer pinned");
  t.deepEqual(readdirSync(join(engine.stateDir, "services")), []);
});

test("the guest sees /dev/vda read-only at the image's size and /dev/vdb writable at diskSizeMib (GET_ID scratch); services of one image share its base disk", async (t) => {
  const img = await image();
  const engine = await open(t);
  const discovery = await engine.create({ target: "microvm", spec: imageSpec(img.ref, "virtio-discovery", { diskSizeMib: 32 }), start: true });
  const rw = await engine.create({ target: "microvm", spec: imageSpec(img.ref, "virtio-blk-rw", {}, "vmctl.dev=1", "vmctl.drive_id=scratch"), start: true });
  const ro = await engine.create({ target: "microvm", spec: imageSpec(img.ref, "virtio-blk-ro", {}, "vmctl.dev=0"), start: true });
  for (const x of [discovery, rw, ro]) t.is((await engine.wait(x.id)).code, 0, `${x.name}: ${(await consoleOf(engine, x.id)).slice(-400)}`);

  const base = engine.images.inspect(img.manifest.digest);
  const seen = facts(await consoleOf(engine, discovery.id));
  t.is(seen.virtio_devices, "2");
  t.is(seen.dev0_read_only, "1");
  t.is(seen.dev0_capacity, String(base.diskBytes / 512), "/dev/vda is the base disk");
  t.is(seen.dev1_read_only, "0");
  t.is(seen.dev1_capacity, String((32 * MIB) / 512), "/dev/vdb is the writable layer");
  t.is(facts(await consoleOf(engine, rw.id)).drive_id, "scratch");
  t.is(facts(await consoleOf(engine, ro.id)).read_only, "1");

  // One image, one base disk, pinned by all three; each VM its own writable layer, default 10 GiB.
  t.is(engine.images.list().length, 1);
  t.deepEqual([...base.usedBy].sort(), [discovery.id, rw.id, ro.id].sort());
  const vms = [discovery, rw, ro].map((x) => vmFile(engine, x.id));
  t.deepEqual(new Set(vms.map((vm) => vm.drives[0]?.path)), new Set([base.disk]));
  t.is(new Set(vms.map((vm) => vm.drives[1]?.path)).size, 3);
  t.is(statSync(join(serviceDir(engine, rw.id), "scratch.ext4")).size, 10 * 1024 * MIB);

  const before = statSync(base.disk);
  for (const x of [discovery, rw, ro]) await engine.delete(x.id);
  t.true(existsSync(base.disk));
  t.is(statSync(base.disk).mtimeMs, before.mtimeMs, "the base disk was never written");
  t.deepEqual(readdirSync(join(engine.stateDir, "services")), []);
  t.is(vmmsUnder(engine.stateDir).size, 0);
});

test("a restart boots the digest prepared before it, even after the tag moved to another image", async (t) => {
  const stateDir = join(s.dir, "restart");
  const layoutDir = join(s.dir, "layout-moving");
  const v1 = await image("v1", layoutDir);
  const first = await Orchestrator.open({ stateDir, plugins: [registration], log: silentLogger, images: { native } });
  const early = await first.create({ target: "microvm", spec: imageSpec(v1.ref, "virtio-discovery") });
  const prepared = first.images.inspect(v1.manifest.digest);
  await first.close();

  const v2 = await image("v2", layoutDir);
  t.not(v2.manifest.digest, v1.manifest.digest);
  t.is(v2.ref, v1.ref, "the same reference names the new image now");
  const engine = await open(t, stateDir);
  t.is(engine.get(early.id).phase, "created");
  const late = await engine.create({ target: "microvm", spec: imageSpec(v2.ref, "virtio-discovery") });
  await engine.start(early.id);
  await engine.start(late.id);
  t.is((await engine.wait(early.id)).code, 0);
  t.is((await engine.wait(late.id)).code, 0);

  t.is(vmFile(engine, early.id).image?.digest, v1.manifest.digest, "the early service boots what it prepared");
  t.is(vmFile(engine, early.id).drives[0]?.path, prepared.disk);
  t.is(vmFile(engine, late.id).image?.digest, v2.manifest.digest);
  t.not(vmFile(engine, late.id).drives[0]?.path, prepared.disk);
  t.deepEqual(engine.images.inspect(v1.manifest.digest).usedBy, [early.id]);
});

test("vmctl run --target microvm IMAGE -- WORDS: a reference that is not a path is the image, the words go on the command line", async (t) => {
  const img = await image();
  const engine = await open(t);
  const service = await engine.create({
    target: "microvm",
    spec: { kernel: s.guest, memoryMib: 16, diskSizeMib: 16 },
    run: { image: img.ref, command: ["vmctl.test=virtio-discovery"] },
    start: true,
  });
  t.is((await engine.wait(service.id)).code, 0);
  t.is((engine.get(service.id).spec as { image?: string }).image, img.ref);
  const seen = facts(await consoleOf(engine, service.id));
  t.is(seen.dev0_read_only, "1");
  t.is(seen.dev1_capacity, String((16 * MIB) / 512));
  t.is(vmFile(engine, service.id).bootArgs, `${DEFAULT_BOOT_ARGS} vmctl.test=virtio-discovery root=/dev/vda ro`);
});

test("a create whose image cannot be had fails naming why and leaves nothing behind", async (t) => {
  const engine = await open(t);
  const err = await t.throwsAsync(engine.create({ target: "microvm", spec: imageSpec(`oci:${join(s.dir, "no-such-layout")}:t`, "hello") }), {
    instanceOf: VmctlError,
  });
  t.true(["NOT_FOUND", "INVALID_ARGUMENT"].includes(err?.code ?? ""), `${err?.code}: ${err?.message}`);
  t.deepEqual(engine.list(), []);
  t.deepEqual(readdirSync(join(engine.stateDir, "services")), []);
  t.deepEqual(engine.images.list(), []);

  const bad = await t.throwsAsync(engine.create({ target: "microvm", spec: { kernel: s.guest, diskSizeMib: 64 } }), { instanceOf: VmctlError });
  t.is(bad?.code, "INVALID_ARGUMENT");
  t.regex(bad?.message ?? "", /diskSizeMib/);
});
