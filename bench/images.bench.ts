// The image side of microVMs, measured against the tools a user would otherwise chain,
// in the same run, interleaved (these machines are shared and noisy), medians:
// - first prepare of a ~50 MiB three-layer image from a loopback registry (pull, unpack,
//   ext4 base disk) vs `skopeo copy` + `umoci unpack` + `mkfs.ext4 -d` of the same image;
// - a cached image to one VM's disk set (index lookup + writable layer), for a 10 MiB
//   and a 1 GiB image: it must not grow with the image;
// - the store's bytes for two images sharing a base layer, vs storing it twice.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createWritableLayer, prepareImage } from "@vmctl/native";
import { ImageStore, silentLogger, StateStore } from "@vmctl/core";
import { buildBenchImage, buildImage, push, type BuiltImage } from "../tests/images/fixtures/image-builder.js";
import { startRegistry } from "../tests/images/fixtures/registry.js";
import { timeCommand } from "./lib/process.js";
import { median, report, reportError } from "./lib/report.js";

const FIRST_PREPARE_RUNS = 7;
const DISK_SET_RUNS = 31;
const MiB = 1024 * 1024;
const WRITABLE_LAYER_BYTES = 10 * 1024 * MiB;

const work = mkdtempSync(join(tmpdir(), "vmctl-bench-images-"));
const native = { prepareImage, createWritableLayer };

/**
 * ms of one first prepare: into a long-lived store, as vmctld's is, emptied of the image
 * (blobs and disk) first, so every run pulls, unpacks and builds it all again.
 */
async function timePrepare(store: string, source: string): Promise<number> {
  for (const dir of ["blobs/sha256", "disks"]) rmSync(join(store, dir), { recursive: true, force: true });
  const start = performance.now();
  await prepareImage({ storeDir: store, source }, () => {});
  return performance.now() - start;
}

/** ms of the peer chain: skopeo copy from the registry, umoci unpack, mkfs.ext4 -d (in a long-lived parent too). */
async function timePeer(parent: string, reference: string, tag: string, diskMib: number): Promise<number> {
  const dir = mkdtempSync(join(parent, "run-"));
  try {
    const copy = await timeCommand("skopeo", ["--insecure-policy", "copy", "--src-tls-verify=false", `docker://${reference}`, `oci:${dir}/layout:${tag}`]);
    const unpack = await timeCommand("umoci", ["unpack", "--image", `${dir}/layout:${tag}`, `${dir}/bundle`]);
    const mkfs = await timeCommand("mkfs.ext4", ["-q", "-F", "-O", "^has_journal", "-d", `${dir}/bundle/rootfs`, `${dir}/disk.ext4`, `${diskMib}M`]);
    return copy + unpack + mkfs;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function firstPrepare(): Promise<void> {
  const registry = await startRegistry();
  let image: BuiltImage | undefined;
  try {
    // gzip throughout: Debian's umoci (0.4.7) reads no zstd layers.
    image = await buildBenchImage({ seed: "bench-first-prepare", compression: "gzip" });
    const pushed = await push(image.layoutDir, image.tag, registry);
    const probe = mkdtempSync(join(work, "probe-"));
    const { diskBytes } = await prepareImage({ storeDir: probe, source: pushed.reference }, () => {});
    rmSync(probe, { recursive: true, force: true });
    const store = mkdtempSync(join(work, "store-"));
    const peerDir = mkdtempSync(join(work, "peer-"));
    const ours: number[] = [];
    const theirs: number[] = [];
    for (let i = 0; i < FIRST_PREPARE_RUNS; i++) {
      ours.push(await timePrepare(store, pushed.reference));
      theirs.push(await timePeer(peerDir, pushed.reference, image.tag, Math.ceil(diskBytes / MiB)));
    }
    const megabytes = image.layers.reduce((sum, l) => sum + l.uncompressedSize, 0) / MiB;
    report({
      name: "image: first prepare from a loopback registry (pull, unpack, ext4 base)",
      unit: "ms",
      value: median(ours),
      baseline: median(theirs),
      baselineName: "skopeo copy + umoci unpack + mkfs.ext4 -d",
      runs: FIRST_PREPARE_RUNS,
      target: "ratio <= 0.5",
      conditions: { imageMiB: Math.round(megabytes), layers: image.layers.length },
    });
  } finally {
    await image?.remove();
    await registry.stop();
  }
}

/** A one-layer image of `bytes` of incompressible data, imported into the store; its name. */
async function importedImage(images: ImageStore, bytes: number, tag: string): Promise<string> {
  const chunk = Buffer.alloc(MiB);
  const content = Buffer.alloc(bytes);
  for (let off = 0; off < bytes; off += MiB) {
    for (let i = 0; i < MiB; i += 4) chunk.writeUInt32LE((Math.random() * 2 ** 32) >>> 0, i);
    chunk.copy(content, off);
  }
  const image = await buildImage({ layers: [{ entries: [{ path: "payload.bin", type: "file", content }], compression: "none" }] }, { tag });
  try {
    const record = await images.pull(`oci:${image.layoutDir}:${tag}`);
    return record.references[0] ?? record.digest;
  } finally {
    await image.remove();
  }
}

async function diskSets(): Promise<void> {
  const stateDir = mkdtempSync(join(work, "state-"));
  const state = StateStore.open(stateDir);
  const storeDir = join(stateDir, "images");
  mkdirSync(storeDir);
  const images = new ImageStore({ storeDir, db: state.database, native, log: silentLogger });
  try {
    const sizes = [10 * MiB, 1024 * MiB];
    const refs: string[] = [];
    for (const [i, bytes] of sizes.entries()) refs.push(await importedImage(images, bytes, `size${i}`));
    const vmDir = join(work, "vms");
    mkdirSync(vmDir);
    let n = 0;
    for (const [i, bytes] of sizes.entries()) {
      const source = refs[i] as string;
      const times: number[] = [];
      for (let run = 0; run < DISK_SET_RUNS; run++) {
        const start = performance.now();
        const found = images.find(source);
        await createWritableLayer({ storeDir, path: join(vmDir, `vm${n++}.ext4`), sizeBytes: WRITABLE_LAYER_BYTES });
        const ms = performance.now() - start;
        if (found === undefined) throw new Error(`${source} is not in the index`);
        if (n > 1) times.push(ms); // the very first one formats the template, once per size
      }
      report({
        name: `image: cached image to a VM's disk set (${bytes / MiB} MiB image, 10 GiB writable layer)`,
        unit: "ms",
        value: median(times),
        runs: times.length,
        target: "<= 10 ms, flat from 10 MiB to 1 GiB",
      });
    }
  } finally {
    state.close();
  }
}

async function sharedLayers(): Promise<void> {
  const storeDir = mkdtempSync(join(work, "shared-"));
  const base = Buffer.alloc(8 * MiB, 7);
  const layouts: BuiltImage[] = [];
  try {
    for (const name of ["one", "two"]) {
      const image = await buildImage(
        { layers: [{ entries: [{ path: "base.bin", type: "file", content: base }], compression: "none" }, { entries: [{ path: name, type: "file", content: name }] }] },
        { tag: name },
      );
      layouts.push(image);
      await prepareImage({ storeDir, source: `oci:${image.layoutDir}:${name}` }, () => {});
    }
    const blobs = join(storeDir, "blobs/sha256");
    const stored = readdirSync(blobs).reduce((sum, f) => sum + statSync(join(blobs, f)).size, 0);
    const twice = layouts.reduce((sum, l) => sum + l.layers.reduce((s, x) => s + x.size, 0) + l.config.size + l.manifest.size, 0);
    report({ name: "image: blob bytes for two images sharing an 8 MiB base layer", unit: "bytes", value: stored, baseline: twice, baselineName: "each image stored whole", runs: 1, target: "the shared layer stored once" });
  } finally {
    for (const l of layouts) await l.remove();
  }
}

try {
  for (const [name, bench] of [
    ["image: first prepare", firstPrepare],
    ["image: disk sets", diskSets],
    ["image: shared layers", sharedLayers],
  ] as const) {
    try {
      await bench();
    } catch (err) {
      reportError(name, err instanceof Error ? err.message : String(err));
    }
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
