// Test fixtures for the lxc target: a TargetContext over a temp serviceDir and a memory
// ledger, a busybox rootfs, and a factory whose lxcpath is private to the test file.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { OwnedResource } from "@vmctl/core/contract";
import { findBinary } from "@vmctl/core/target-kit";
import { BUSYBOX_APPLETS, busyboxRootfs as kitRootfs, MemoryLogger, processesMentioning, testTargetContext, type TestTargetContext } from "@vmctl/plugin-conformance";
import type { LxcFactory } from "../factory.js";
import { initLxc } from "../index.js";

export { MemoryLogger };
export type TestContext = TestTargetContext;

/** A context for one service whose serviceDir lives under `parent` (the conformance kit's). */
export function testContext(parent: string, serviceId: string, resources: readonly OwnedResource[] = []): TestContext {
  return testTargetContext(parent, serviceId, { owner: "lxc-tests", resources });
}

/** The applets the lxc tests call, besides the kit's usual ones (network, exec on a terminal, ps in the container, the kit's copy check). */
const LXC_APPLETS = [...BUSYBOX_APPLETS, "hostname", "ping", "ip", "nc", "httpd", "stty", "tty", "ps", "head", "mkdir", "ln", "sha256sum", "readlink"];

/** A tiny rootfs from busybox-static (the conformance kit's fixture), with the network applets. */
export function busyboxRootfs(dir: string): string {
  return kitRootfs(dir, LXC_APPLETS);
}

/** The path of lxc-execute, or a thrown reason: the lxc tests run against real LXC. */
export function requireLxc(): string {
  const execute = findBinary("lxc-execute");
  if (!execute) throw new Error("lxc-execute not found on PATH or in /usr/sbin: install lxc (npm run setup)");
  if (process.getuid?.() !== 0) throw new Error("the lxc tests need root (LXC runs privileged containers)");
  return execute;
}

/** A scratch area for one test file: a state dir (the lxcpath), service dirs, a rootfs. */
export interface Scratch {
  readonly dir: string;
  readonly stateDir: string;
  readonly lxcpath: string;
  readonly rootfs: string;
  readonly log: MemoryLogger;
  factory(): LxcFactory;
  /** Kills every container left under the lxcpath, their shims, and removes the scratch dir. */
  cleanup(): void;
}

export function scratch(prefix = "vmctl-lxc-", options: Record<string, unknown> = {}): Scratch {
  requireLxc();
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const stateDir = join(dir, "state");
  const lxcpath = join(stateDir, "containers");
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
    lxcpath,
    rootfs,
    log,
    factory() {
      const factory = initLxc({ stateDir, options, log });
      if (!factory) throw new Error("lxc target did not initialise although LXC is installed");
      return factory;
    },
    cleanup() {
      for (const name of lxcLs(lxcpath)) spawnSync("lxc-stop", ["-P", lxcpath, "-n", name, "-k"], { stdio: "ignore" });
      // Shims (and their lxc-execute) name this scratch dir on their command line.
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

/** Containers defined under an lxcpath, as `lxc-ls` sees them. */
export function lxcLs(lxcpath: string): string[] {
  if (!existsSync(lxcpath)) return [];
  const r = spawnSync("lxc-ls", ["-P", lxcpath, "-1"], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`lxc-ls: ${r.stderr.trim()}`);
  return r.stdout.split("\n").map((l) => l.trim()).filter(Boolean);
}

/** Entries in the lxcpath (container dirs, whether or not LXC considers them defined). */
export function lxcpathEntries(lxcpath: string): string[] {
  return existsSync(lxcpath) ? readdirSync(lxcpath) : [];
}
