// The TargetContext every test of a target runs with: a serviceDir made under a parent
// dir laid out as the engine lays out its own (services/<id>/), the owner labels the
// engine sets, an in-memory ledger and logger, and no image engine. The harness and
// every plugin's own test fixtures build their contexts here, so none drifts from it.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { OWNER_LABEL, SERVICE_LABEL, type ImageAccess, type OwnedResource, type TargetContext } from "@vmctl/core/contract";
import { unavailableImages } from "@vmctl/core/target-kit";
import { MemoryLedger } from "./memory-ledger.js";
import { MemoryLogger } from "./memory-logger.js";

/** A TargetContext whose ledger and logger tests can read back. */
export interface TestTargetContext extends TargetContext {
  readonly resources: MemoryLedger;
  readonly log: MemoryLogger;
}

export interface TestTargetContextOptions {
  /** The owner label value: one "installation" (a harness, a test file). */
  readonly owner: string;
  /** Entries the ledger starts with (an adopt after a restart). */
  readonly resources?: readonly OwnedResource[];
  /** The serviceDir, when another process chose it (a crash test's child); else under `parent`. */
  readonly serviceDir?: string;
  /** The image store's access for this service (default: none, NO_IMAGES). */
  readonly images?: ImageAccess;
}

/**
 * No image engine: a target asking for an image is told so, as a vmctld without one
 * tells it (FAILED_PRECONDITION).
 */
export const NO_IMAGES: ImageAccess = unavailableImages();

/** The owner labels of a service, as the engine sets them. */
export function testOwnerLabels(owner: string, serviceId: string): Readonly<Record<string, string>> {
  return { [OWNER_LABEL]: owner, [SERVICE_LABEL]: serviceId };
}

/** The serviceDir of `serviceId` under `parent` (not made). */
export function testServiceDir(parent: string, serviceId: string): string {
  return join(parent, "services", serviceId);
}

/** A context for `serviceId`, its serviceDir made under `parent`, its ledger seeded with `options.resources`. */
export function testTargetContext(parent: string, serviceId: string, options: TestTargetContextOptions): TestTargetContext {
  const serviceDir = options.serviceDir ?? testServiceDir(parent, serviceId);
  mkdirSync(serviceDir, { recursive: true });
  return {
    serviceId,
    serviceDir,
    ownerLabels: testOwnerLabels(options.owner, serviceId),
    resources: new MemoryLedger(options.resources ?? []),
    log: new MemoryLogger(),
    images: options.images ?? NO_IMAGES,
  };
}
