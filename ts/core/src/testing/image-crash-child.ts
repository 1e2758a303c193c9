// For the image store's crash test: pulls `node:20` through the STAND-IN engine into the
// state directory argv[2] and holds still at argv[3] — "after-blobs" (blobs written, no
// disk), "after-disk" (every file written, no index row) or "after-commit" (recorded) —
// announcing "HOLD <point>" (with the digest) so the test can kill -9 it right there.
import { join } from "node:path";
import { ImageStore } from "../images/image-store.js";
import { silentLogger } from "../log/logger.js";
import { StateStore } from "../state/state-store.js";
import { StandInImageEngine } from "./stand-in-image-engine.js";

const [stateDir, point] = process.argv.slice(2);
if (stateDir === undefined || (point !== "after-blobs" && point !== "after-disk" && point !== "after-commit")) {
  throw new Error("usage: image-crash-child STATE_DIR after-blobs|after-disk|after-commit");
}
const state = StateStore.open(stateDir);
const engine = new StandInImageEngine().publish("node:20", { layers: ["base layer", "node layer"] });
const images = new ImageStore({ storeDir: join(stateDir, "images"), db: state.database, native: engine, log: silentLogger });
await images.recover();
// A timer keeps Node running until the kill.
setInterval(() => undefined, 60_000);
if (point === "after-commit") {
  const image = await images.pull("node:20");
  process.stdout.write(`HOLD ${point} ${image.digest}\n`);
} else {
  const held = engine.hold("node:20", point);
  void images.pull("node:20");
  await held.reached;
  process.stdout.write(`HOLD ${point}\n`);
}
