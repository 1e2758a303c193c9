// An image store for the kit, as vmctld's own (the native image engine, @vmctl/native,
// and its index in a state database): targets that take images (a microVM booting an OCI
// image) then run under the kit as under vmctld. One process per store (the state
// database is locked to its opener), so the restart checks' first orchestrator gets a
// store of its own.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { ImageStore, nativeImageEngine, silentLogger, StateStore } from "@vmctl/core";
import type { ImageAccess } from "@vmctl/core/contract";

export interface ConformanceImages {
  /** The directory the store lives in. */
  readonly dir: string;
  /** `TargetContext.images` of one service. */
  access(serviceId: string): ImageAccess;
  close(): void;
}

/** Opens (making as needed) an image store in `dir`, its images under `dir/images`. */
export async function openConformanceImages(dir: string): Promise<ConformanceImages> {
  mkdirSync(dir, { recursive: true });
  const state = StateStore.open(dir);
  try {
    const images = new ImageStore({ storeDir: join(dir, "images"), db: state.database, native: nativeImageEngine(), log: silentLogger });
    await images.recover();
    return {
      dir,
      access(serviceId) {
        // An image is pinned by a service the state knows, as under vmctld (the row is never
        // removed: the whole store goes with the harness's temp dir).
        if (state.get(serviceId) === undefined) state.reserve({ id: serviceId, name: serviceId, target: "conformance", labels: {}, spec: {}, dependsOn: [] });
        return images.access(serviceId);
      },
      close: () => state.close(),
    };
  } catch (err) {
    state.close();
    throw err;
  }
}
