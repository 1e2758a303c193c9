// The client's image methods and create with progress, against vmctld's handlers with a
// small in-test image store (the real one in @vmctl/core is not ready yet).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import test from "ava";
import { silentLogger, type OrchestratorApi, type ServiceRecord } from "@vmctl/core";
import { OrchestratorService } from "@vmctl/proto";
import { bindUnixSocket, CallTracker, orchestratorHandlers, type ImageRecordView, type ServedEngine } from "@vmctl/server";
import { connect, VmctlError, type ProgressEvent, type VmctlClient } from "./index.js";

const LAYER = `sha256:${"1".repeat(64)}`;
const IMAGE: ImageRecordView = {
  digest: `sha256:${"a".repeat(64)}`,
  references: ["docker.io/library/node:20"],
  configDigest: `sha256:${"c".repeat(64)}`,
  layers: [{ digest: LAYER, size: 3_000_000_000, mediaType: "application/vnd.oci.image.layer.v1.tar+gzip" }],
  diskBytes: 5_000_000_000,
  config: { entrypoint: [], cmd: ["node"], env: ["A=1"], workingDir: "/", user: "", labels: {} },
  pulledAt: new Date(1_700_000_000_000),
  usedBy: [],
};
const now = new Date(1_700_000_000_000);
const RECORD: ServiceRecord = { id: "0123456789abcdef", name: "web", target: "microvm", labels: {}, spec: {}, dependsOn: [], phase: "running", addresses: [], ready: true, createdAt: now, updatedAt: now };

async function serve(t: { teardown(fn: () => void): void }, withProgressRpc = true): Promise<VmctlClient> {
  const dir = mkdtempSync(join(tmpdir(), "vmctl-client-images-"));
  const engine: ServedEngine = {
    ...({} as OrchestratorApi),
    async create(_input, options) {
      options?.progress?.({ phase: "download", item: LAYER, current: 1, total: 2 });
      await new Promise((r) => setTimeout(r, 5));
      options?.progress?.({ phase: "download", item: LAYER, current: 2, total: 2 });
      return RECORD;
    },
    images: {
      async pull(_reference, options) {
        options?.progress?.({ phase: "download", item: LAYER, current: 2_999_999_999, total: 3_000_000_000 });
        await new Promise((r) => setTimeout(r, 5));
        options?.progress?.({ phase: "done" });
        return IMAGE;
      },
      resolve: () => Promise.resolve(IMAGE),
      list: () => [IMAGE],
      inspect: () => IMAGE,
      remove: async () => ({ untagged: ["docker.io/library/node:20"], deleted: [IMAGE.digest] }),
      prune: async (o) => ({ removed: o?.all ? [IMAGE.digest] : [], reclaimedBytes: o?.all ? 5_000_000_000 : 0 }),
    },
  };
  const handlers = orchestratorHandlers(engine, silentLogger, new CallTracker());
  // An older daemon: no CreateServiceWithProgress.
  const service = withProgressRpc ? OrchestratorService : Object.fromEntries(Object.entries(OrchestratorService).filter(([name]) => name !== "createServiceWithProgress"));
  const server = new grpc.Server();
  server.addService(service as grpc.ServiceDefinition, handlers);
  const socket = join(dir, "s.sock");
  await bindUnixSocket(server, socket);
  const client = connect(socket);
  t.teardown(() => {
    client.close();
    server.forceShutdown();
    rmSync(dir, { recursive: true, force: true });
  });
  return client;
}

test("pullImage reports progress in order, then resolves with the image as plain data (sizes past 2^31 intact)", async (t) => {
  const client = await serve(t);
  const seen: ProgressEvent[] = [];
  const image = await client.pullImage("node:20", { onProgress: (e) => seen.push(e) });
  t.deepEqual(seen, [{ phase: "download", item: LAYER, current: 2_999_999_999, total: 3_000_000_000 }, { phase: "done" }]);
  t.is(image.digest, IMAGE.digest);
  t.is(image.diskBytes, 5_000_000_000);
  t.is(image.layers[0]?.size, 3_000_000_000);
  t.deepEqual(image.pulledAt, IMAGE.pulledAt);
  t.is(image.created, undefined);
  t.deepEqual(image.config.cmd, ["node"]);
});

test("listImages, inspectImage, removeImage and pruneImages; a bad reference is INVALID_ARGUMENT naming reference", async (t) => {
  const client = await serve(t);
  t.deepEqual((await client.listImages()).map((i) => i.digest), [IMAGE.digest]);
  t.is((await client.inspectImage(IMAGE.digest)).configDigest, IMAGE.configDigest);
  t.deepEqual(await client.removeImage("node:20", { force: true }), { untagged: ["docker.io/library/node:20"], deleted: [IMAGE.digest] });
  t.deepEqual(await client.pruneImages(), { removed: [], reclaimedBytes: 0 });
  t.deepEqual(await client.pruneImages({ all: true }), { removed: [IMAGE.digest], reclaimedBytes: 5_000_000_000 });
  const err = await t.throwsAsync(client.pullImage("node:20\n"), { instanceOf: VmctlError });
  t.is(err?.code, "INVALID_ARGUMENT");
  t.is(err?.details.field, "reference");
});

test("an onProgress that throws cancels the pull and its error is what the call rejects with", async (t) => {
  const client = await serve(t);
  const boom = new Error("renderer broke");
  const err = await t.throwsAsync(
    client.pullImage("node:20", {
      onProgress: () => {
        throw boom;
      },
    }),
  );
  t.is(err, boom);
});

test("create with onProgress streams the target's progress; against an older daemon it falls back to a plain create", async (t) => {
  const client = await serve(t);
  const seen: ProgressEvent[] = [];
  const service = await client.create({ target: "microvm", run: { image: "node:20", command: [], env: {} } }, { onProgress: (e) => seen.push(e) });
  t.is(service.id, RECORD.id);
  t.deepEqual(seen.map((e) => e.current), [1, 2]);
  t.is((await client.create({ target: "microvm" })).id, RECORD.id, "without onProgress: the unary call");

  const older = await serve(t, false);
  const none: ProgressEvent[] = [];
  t.is((await older.create({ target: "microvm" }, { onProgress: (e) => none.push(e) })).id, RECORD.id);
  t.deepEqual(none, []);
});
