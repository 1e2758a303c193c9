// Making the image store's files and its index agree. The index is the truth about what
// is complete (a row is written only after the engine's files exist), so: work in
// progress is garbage at start-up, a disk or blob no row holds is garbage, and a row
// whose disk is gone is dropped. Run only while no engine call is in flight (start-up,
// or under the store's exclusive lock).
import { join, resolve } from "node:path";
import type { Logger } from "../contract/target.js";
import type { ImageIndex } from "./image-index.js";
import { entries, exists, removePath, type StoreLayout } from "./store-files.js";

export interface ImageRecoveryReport {
  /** Entries of `tmp/` removed (work in progress when the last vmctld stopped). */
  readonly tmpEntries: readonly string[];
  /** Files of `disks/` no image row holds, removed. */
  readonly orphanDisks: readonly string[];
  /** Images dropped from the index because their disk file was gone (digests). */
  readonly missingDisks: readonly string[];
  /** Blob files no image holds, removed (digests). */
  readonly orphanBlobs: readonly string[];
  /** Bytes freed on disk. */
  readonly reclaimedBytes: number;
}

/** Start-up recovery: see the file comment. */
export async function recoverStore(layout: StoreLayout, index: ImageIndex, log: Logger): Promise<ImageRecoveryReport> {
  let reclaimedBytes = 0;
  const tmpEntries = await entries(layout.tmp);
  for (const entry of tmpEntries) reclaimedBytes += await removePath(join(layout.tmp, entry));

  const missingDisks: string[] = [];
  for (const image of index.list()) {
    if (await exists(image.disk)) continue;
    const { names, services } = index.forget(image.digest);
    missingDisks.push(image.digest);
    log.warn("image dropped from the index: its disk is gone", { digest: image.digest, disk: image.disk, names, usedBy: services });
  }

  const swept = await sweepUnheld(layout, index);
  reclaimedBytes += swept.reclaimedBytes;
  const report: ImageRecoveryReport = {
    tmpEntries,
    orphanDisks: swept.disks,
    missingDisks,
    orphanBlobs: swept.blobs,
    reclaimedBytes,
  };
  if (tmpEntries.length + swept.disks.length + missingDisks.length + swept.blobs.length > 0) {
    log.info("image store recovered", {
      tmpEntries: tmpEntries.length,
      orphanDisks: swept.disks,
      missingDisks,
      orphanBlobs: swept.blobs.length,
      reclaimedBytes,
    });
  }
  return report;
}

/** Removes disk files and blob files no image row holds. */
export async function sweepUnheld(
  layout: StoreLayout,
  index: ImageIndex,
): Promise<{ readonly disks: string[]; readonly blobs: string[]; readonly reclaimedBytes: number }> {
  let reclaimedBytes = 0;
  const held = new Set(index.list().map((image) => resolve(image.disk)));
  const disks: string[] = [];
  for (const entry of await entries(layout.disks)) {
    const path = join(layout.disks, entry);
    if (held.has(path)) continue;
    reclaimedBytes += await removePath(path);
    disks.push(entry);
  }
  const heldBlobs = index.heldBlobs();
  const blobs: string[] = [];
  for (const entry of await entries(layout.blobs)) {
    const digest = `sha256:${entry}`;
    if (heldBlobs.has(digest)) continue;
    reclaimedBytes += await removePath(join(layout.blobs, entry));
    blobs.push(digest);
  }
  return { disks, blobs, reclaimedBytes };
}

