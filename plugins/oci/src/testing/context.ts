// Test fixtures for the oci target: a TargetContext over a temp serviceDir and a memory
// ledger, a busybox rootfs, and a factory whose runtime root is private to the test.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { OwnedResource } from "@vmctl/core/contract";
import { findBinary, initOci } from "../index.js";
import type { OciFactory } from "../factory.js";
import {
  BUSYBOX_APPLETS,
  busyboxRootfs as kitRootfs,
  MemoryLogger,
  processesMentioning,
  testTargetContext,
  type TestTargetContext,
} from "@vmctl/plugin-conformance";

// One context, in-memory ledger and logger for every plugin's tests: the conformance kit's.
export { MemoryLogger };
export type TestContext = TestTargetContext;

/** A context for one service whose serviceDir lives under `parent`. */
export function testContext(parent: string, serviceId: string, resources: readonly OwnedResource[] = []): TestContext {
  return testTargetContext(parent, serviceId, { owner: "oci-tests", resources });
}

/** The applets the oci tests call, besides the kit's usual ones (exec on a terminal, ps in the container, the kit's copy check). */
const OCI_APPLETS = [...BUSYBOX_APPLETS, "stty", "tty", "ps", "head", "mkdir", "ln", "sha256sum", "readlink"];

/** A tiny rootfs from busybox-static (the conformance kit's fixture), with the exec applets. */
export function busyboxRootfs(dir: string): string {
  return kitRootfs(dir, OCI_APPLETS);
}

/** The path of runc, or a thrown reason: the oci tests run against the real runtime. */
export function requireRunc(): string {
  const runc = findBinary("runc");
  if (!runc) throw new Error("runc not found on PATH or in /usr/sbin: install it (npm run setup)");
  return runc;
}

/** A scratch area for one test file: a state dir (runc root), service dirs, a rootfs. */
export interface Scratch {
  readonly dir: string;
  readonly stateDir: string;
  readonly rootfs: string;
  readonly log: MemoryLogger;
  factory(): OciFactory;
  /** Removes every container left under the root and the whole scratch dir. */
  cleanup(): void;
}

export function scratch(prefix = "vmctl-oci-"): Scratch {
  const runc = requireRunc();
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const stateDir = join(dir, "state");
  let rootfs: string;
  try {
    rootfs = busyboxRootfs(dir);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const log = new MemoryLogger();
  return {
    dir,
    stateDir,
    rootfs,
    log,
    factory() {
      const factory = initOci({ stateDir, options: { runc }, log });
      if (!factory) throw new Error("oci target did not initialise although runc is installed");
      return factory;
    },
    cleanup() {
      const root = join(stateDir, "runc");
      try {
        const out = execFileSync(runc, ["--root", root, "list", "-q"], { encoding: "utf8" });
        for (const id of out.split("\n").filter(Boolean)) {
          execFileSync(runc, ["--root", root, "delete", "--force", id], { stdio: "ignore" });
        }
      } catch {
        // nothing to list
      }
      // Shims of containers deleted above end on their own; any left (the test died
      // mid-start) are ours by their command line, which names this scratch dir.
      for (const pid of processesMentioning(dir)) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // gone already
        }
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Container ids under the scratch root, as `runc list` sees them. */
export function runcList(s: Scratch): string[] {
  // `runc list` fails when a container is deleted while it reads the root: retry that race.
  for (let attempt = 0; ; attempt++) {
    const r = spawnSync(requireRunc(), ["--root", join(s.stateDir, "runc"), "list", "-q"], { encoding: "utf8" });
    if (r.status === 0) return r.stdout.split("\n").filter(Boolean);
    if (attempt >= 20 || !/no such file/.test(r.stderr)) throw new Error(`runc list: ${r.stderr.trim()}`);
  }
}
