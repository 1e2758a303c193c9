// Start-up recovery of the image store, over real files: what no index row accounts for
// is deleted, rows whose disk is gone are dropped, and kill -9 in the middle of a pull
// leaves either a whole image or nothing.
import { spawn } from "node:child_process";
import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import test from "ava";
import { silentLogger, type LogLevel } from "../log/logger.js";
import type { Logger } from "../contract/target.js";
import { StateStore } from "../state/state-store.js";
import { tempDir } from "../testing/fixtures.js";
import { StandInImageEngine } from "../testing/stand-in-image-engine.js";
import { ImageStore } from "./image-store.js";

const child = fileURLToPath(new URL("../testing/image-crash-child.ts", import.meta.url));
const repoRoot = fileURLToPath(new URL("../../../../", import.meta.url));

function open(stateDir: string, log: Logger = silentLogger) {
  const state = StateStore.open(stateDir);
  const engine = new StandInImageEngine().publish("node:20", { layers: ["base layer", "node layer"] }).publish("alpine", { layers: ["alpine"] });
  const images = new ImageStore({ storeDir: join(stateDir, "images"), db: state.database, native: engine, log });
  return { state, engine, images, storeDir: join(stateDir, "images") };
}

function files(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

function recordingLogger(): Logger & { lines: { level: LogLevel; message: string; fields?: Record<string, unknown> }[] } {
  const lines: { level: LogLevel; message: string; fields?: Record<string, unknown> }[] = [];
  const at = (level: LogLevel) => (message: string, fields?: Record<string, unknown>) => void lines.push({ level, message, ...(fields ? { fields } : {}) });
  return { lines, debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

test("recover empties tmp, deletes disks and blobs no row holds, keeps whole images, and says what it cleaned", async (t) => {
  const stateDir = tempDir("vmctl-images-recover-");
  const { state, images, storeDir, engine } = open(stateDir);
  const kept = await images.pull("node:20");
  // Files no row accounts for: an engine call that never returned.
  await engine.prepareImage({ storeDir, source: "alpine" }, () => undefined);
  mkdirSync(join(storeDir, "tmp", "unpack-123"), { recursive: true });
  writeFileSync(join(storeDir, "tmp", "unpack-123", "file"), "partial");
  writeFileSync(join(storeDir, "blobs", "sha256", "deadbeef.partial"), "x");
  mkdirSync(join(storeDir, "layers", "reserved"), { recursive: true });
  state.close();

  const log = recordingLogger();
  const again = open(stateDir, log);
  t.teardown(() => again.state.close());
  const report = await again.images.recover();
  t.deepEqual(report.tmpEntries, ["unpack-123"]);
  t.deepEqual(report.orphanDisks, [`${StandInImageEngine.digestOf({ layers: ["alpine"] }).slice(7)}.ext4`]);
  t.deepEqual(report.missingDisks, []);
  t.is(report.orphanBlobs.length, 3 + 1);
  t.true(report.reclaimedBytes > 0);
  t.deepEqual(files(join(storeDir, "tmp")), []);
  t.deepEqual(files(join(storeDir, "disks")), [`${kept.digest.slice(7)}.ext4`]);
  t.deepEqual(files(join(storeDir, "blobs", "sha256")), kept.blobs.map((b) => b.slice(7)).sort());
  t.deepEqual(files(join(storeDir, "layers")), ["reserved"]);
  t.deepEqual(again.images.list().map((i) => i.digest), [kept.digest]);
  t.true(log.lines.some((l) => l.message === "image store recovered" && l.level === "info"));
});

test("recover drops an image whose disk is gone, with its names and uses, and its blobs", async (t) => {
  const stateDir = tempDir("vmctl-images-recover-");
  const { state, images, storeDir } = open(stateDir);
  state.reserve({ id: "0123456789abcdef", name: "web", target: "t", labels: {}, spec: {}, dependsOn: [] });
  const image = await images.use("0123456789abcdef", "node:20");
  rmSync(image.disk);
  state.close();

  const log = recordingLogger();
  const again = open(stateDir, log);
  t.teardown(() => again.state.close());
  const report = await again.images.recover();
  t.deepEqual(report.missingDisks, [image.digest]);
  t.deepEqual(again.images.list(), []);
  t.is(again.images.find("node:20"), undefined);
  t.deepEqual(files(join(storeDir, "blobs", "sha256")), []);
  const warning = log.lines.find((l) => l.level === "warn");
  t.deepEqual(warning?.fields?.usedBy, ["web"]);
  // The next use pulls it again.
  t.is((await again.images.use("0123456789abcdef", "node:20")).digest, image.digest);
});

test("recover of a store that was never made is a no-op", async (t) => {
  const { state, images, storeDir } = open(tempDir("vmctl-images-recover-"));
  t.teardown(() => state.close());
  const report = await images.recover();
  t.deepEqual(report, { tmpEntries: [], orphanDisks: [], missingDisks: [], orphanBlobs: [], reclaimedBytes: 0 });
  t.deepEqual(files(storeDir), []);
});

/** Runs the child until it holds at `point`, then kills it with SIGKILL. */
async function pullAndKill(stateDir: string, point: string): Promise<string[]> {
  const proc = spawn(process.execPath, ["--import", "tsx", child, stateDir, point], { cwd: repoRoot, stdio: ["ignore", "pipe", "inherit"] });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => proc.once("exit", (_code, signal) => resolve(signal)));
  let words: string[] = [];
  for await (const line of createInterface({ input: proc.stdout })) {
    if (!line.startsWith("HOLD ")) continue;
    words = line.split(" ");
    proc.kill("SIGKILL");
  }
  const signal = await exited;
  if (signal !== "SIGKILL") throw new Error(`the child ended by itself (${String(signal)})`);
  return words;
}

for (const point of ["after-blobs", "after-disk"] as const) {
  test(`kill -9 ${point} of a pull: no row was written, and recover removes every file it made`, async (t) => {
    const stateDir = tempDir("vmctl-images-crash-");
    await pullAndKill(stateDir, point);
    const storeDir = join(stateDir, "images");
    t.true(files(join(storeDir, "blobs", "sha256")).length > 0, "the engine had written files");
    if (point === "after-disk") t.is(files(join(storeDir, "disks")).length, 1);

    const { state, images } = open(stateDir);
    t.teardown(() => state.close());
    t.deepEqual(images.list(), [], "no half-made image is visible");
    await images.recover();
    t.deepEqual(files(join(storeDir, "blobs", "sha256")), []);
    t.deepEqual(files(join(storeDir, "disks")), []);
    t.deepEqual(files(join(storeDir, "tmp")), []);
    t.true(state.integrityCheck().ok);
  });
}

test("kill -9 after a pull was recorded: the image survives whole, recover keeps every file", async (t) => {
  const stateDir = tempDir("vmctl-images-crash-");
  const [, , digest] = await pullAndKill(stateDir, "after-commit");
  const { state, images, storeDir } = open(stateDir);
  t.teardown(() => state.close());
  const report = await images.recover();
  t.deepEqual(report.orphanBlobs, []);
  t.deepEqual(report.orphanDisks, []);
  const image = images.inspect("node:20");
  t.is(image.digest, digest ?? "");
  t.deepEqual(files(join(storeDir, "blobs", "sha256")), image.blobs.map((b) => b.slice(7)).sort());
  t.deepEqual(files(join(storeDir, "disks")), [`${image.digest.slice(7)}.ext4`]);
});
