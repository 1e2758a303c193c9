// Test fixtures for the docker target: a Docker daemon (the host's, or the shared private
// one from tests/support/dockerd.ts), a busybox image built locally (no registry, no
// network), a TargetContext over a temp serviceDir and a memory ledger, and cleanup of
// every container a test file made (found by its owner label).
import { spawn } from "node:child_process";
import { createWriteStream, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import Docker from "dockerode";
import type { OwnedResource } from "@vmctl/core/contract";
import { BUSYBOX_APPLETS, busyboxRootfs, MemoryLedger, MemoryLogger, testTargetContext, type TestTargetContext } from "@vmctl/plugin-conformance";
import { ensureDocker, type DockerDaemon } from "../../../../tests/support/dockerd.js";
import type { DockerFactory } from "../factory.js";
import { initDocker } from "../index.js";
import { OWNER_LABEL } from "../naming.js";

export { MemoryLedger, MemoryLogger };

/** The busybox image every docker test runs (the tag names its applets: a new set, a new tag). */
export const TEST_IMAGE = "vmctl-test/busybox:2";
/** The kit's applets, and what its exec and copy checks call (stty; mkdir, ln, sha256sum, readlink). */
const APPLETS = [...BUSYBOX_APPLETS, "hostname", "ip", "stty", "mkdir", "ln", "sha256sum", "readlink"];

export type TestContext = TestTargetContext;

/** A dockerode client for assertions the plugin does not offer (list by label, image removal). */
export function client(socket: string): Docker {
  return new Docker({ socketPath: socket });
}

/** Resolves when a Docker progress stream (import, load) ends; rejects on an error in it. */
function finished(docker: Docker, stream: NodeJS.ReadableStream): Promise<unknown[]> {
  return new Promise((resolve, reject) => docker.modem.followProgress(stream, (err, out) => (err ? reject(err) : resolve(out))));
}

/** Makes TEST_IMAGE with `docker import` of a busybox rootfs (through the API) unless the daemon has it. */
export async function ensureTestImage(socket: string): Promise<string> {
  const docker = client(socket);
  try {
    await docker.getImage(TEST_IMAGE).inspect();
    return TEST_IMAGE;
  } catch {
    // not there yet
  }
  const dir = mkdtempSync(join(tmpdir(), "vmctl-docker-image-"));
  try {
    const rootfs = busyboxRootfs(dir, APPLETS);
    const tar = spawn("tar", ["-C", rootfs, "-c", "."], { stdio: ["ignore", "pipe", "inherit"] });
    const [repo, tag] = TEST_IMAGE.split(":") as [string, string];
    await finished(docker, await docker.importImage(tar.stdout, { repo, tag }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return TEST_IMAGE;
}

/**
 * A `docker save` archive of TEST_IMAGE tagged `tag`, written to `path`; the tag is then
 * removed from the daemon so loading the archive is what brings it back.
 */
export async function saveArchive(socket: string, tag: string, path: string): Promise<string> {
  const docker = client(socket);
  const [repo, version] = tag.split(":") as [string, string];
  await docker.getImage(TEST_IMAGE).tag({ repo, tag: version });
  await pipeline(await docker.getImage(tag).get(), createWriteStream(path));
  await docker.getImage(tag).remove();
  return path;
}

/** Names of the containers on the daemon carrying `owner` as their owner label. */
export async function containersOwnedBy(socket: string, owner: string): Promise<string[]> {
  const list = await client(socket).listContainers({ all: true, filters: { label: [`${OWNER_LABEL}=${owner}`] } });
  return list.map((c) => (c.Names[0] ?? c.Id).replace(/^\//, ""));
}

/** A scratch area for one test file: a daemon, the test image, service dirs, an owner label. */
export interface Scratch {
  readonly dir: string;
  readonly stateDir: string;
  readonly daemon: DockerDaemon;
  readonly socket: string;
  readonly image: string;
  /** The owner label value of every context this scratch makes. */
  readonly owner: string;
  readonly log: MemoryLogger;
  factory(options?: Record<string, unknown>): DockerFactory;
  context(serviceId: string, resources?: readonly OwnedResource[]): TestContext;
  /** Names of this file's containers still on the daemon. */
  leftovers(): Promise<string[]>;
  /** Removes every container of this file, the scratch dir; releases the daemon. */
  cleanup(): Promise<void>;
}

export async function scratch(prefix = "vmctl-docker-"): Promise<Scratch> {
  const daemon = await ensureDocker();
  const socket = daemon.socket;
  const image = await ensureTestImage(socket);
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const stateDir = join(dir, "state");
  mkdirSync(stateDir, { recursive: true });
  const owner = `docker-tests-${process.pid}-${dir.slice(-6)}`;
  const log = new MemoryLogger();
  return {
    dir,
    stateDir,
    daemon,
    socket,
    image,
    owner,
    log,
    factory(options = { socket }) {
      return initDocker({ stateDir, options, log });
    },
    context: (serviceId, resources = []) => testTargetContext(dir, serviceId, { owner, resources }),
    leftovers: () => containersOwnedBy(socket, owner),
    async cleanup() {
      try {
        const docker = client(socket);
        for (const name of await containersOwnedBy(socket, owner)) await docker.getContainer(name).remove({ force: true }).catch(() => undefined);
      } finally {
        rmSync(dir, { recursive: true, force: true });
        daemon.release();
      }
    },
  };
}
