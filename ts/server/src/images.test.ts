// The image methods and CreateServiceWithProgress over a real gRPC socket, mostly against a
// small in-test image store implementing ImageStoreApi, so the server is tested on its own
// (validation, conversion, streams, cancellation); one test puts the real ImageStore of
// @vmctl/core (with an engine that refuses everything) behind the socket, to show its
// errors name the request's field. End-to-end tests against the real engine are in tests/.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import test from "ava";
import fc from "fast-check";
import { ImageStore, silentLogger, StateStore, VmctlError, type CreateServiceInput, type NativeImageApi, type OrchestratorApi, type ServiceRecord } from "@vmctl/core";
import { decodeRichStatus, OrchestratorClient, OrchestratorService, STATUS_DETAILS_KEY, type vmctl } from "@vmctl/proto";
import type { ImageRecordView, ImageStoreApi, ItemProgressSink, ServedEngine } from "./image-store-api.js";
import { MAX_IMAGE_REFERENCE_BYTES } from "./image-requests.js";
import { CallTracker, orchestratorHandlers } from "./orchestrator-service.js";
import { bindUnixSocket } from "./unix-socket.js";

const NODE: ImageRecordView = {
  digest: `sha256:${"a".repeat(64)}`,
  references: ["docker.io/library/node:20"],
  configDigest: `sha256:${"c".repeat(64)}`,
  layers: [
    { digest: `sha256:${"1".repeat(64)}`, size: 50_100_000, mediaType: "application/vnd.oci.image.layer.v1.tar+gzip" },
    { digest: `sha256:${"2".repeat(64)}`, size: 1234, mediaType: "application/vnd.oci.image.layer.v1.tar+gzip" },
  ],
  diskBytes: 180_000_000,
  config: { entrypoint: ["docker-entrypoint.sh"], cmd: ["node"], env: ["PATH=/usr/bin", "NODE_VERSION=20"], workingDir: "/app", user: "node", labels: { a: "b" } },
  created: "2024-05-01T10:00:00.123456789Z",
  pulledAt: new Date(1_700_000_000_000),
  usedBy: [],
};

/** An image store in memory: records what it was asked, and a pull can be held until released. */
class FakeImageStore implements ImageStoreApi {
  readonly calls: { method: string; reference?: string; field?: string }[] = [];
  hold: Promise<void> | undefined;
  failPullWith: unknown;

  async pull(reference: string, options: { progress?: ItemProgressSink; field?: string } = {}): Promise<ImageRecordView> {
    this.calls.push({ method: "pull", reference, ...(options.field === undefined ? {} : { field: options.field }) });
    options.progress?.({ phase: "resolve" });
    for (const layer of NODE.layers) {
      options.progress?.({ phase: "download", item: layer.digest, current: 0, total: layer.size });
      options.progress?.({ phase: "download", item: layer.digest, current: layer.size, total: layer.size });
    }
    await this.hold;
    if (this.failPullWith !== undefined) throw this.failPullWith;
    options.progress?.({ phase: "done" });
    return NODE;
  }

  resolve(reference: string, progress?: ItemProgressSink): Promise<ImageRecordView> {
    return this.pull(reference, progress === undefined ? {} : { progress });
  }

  list(): ImageRecordView[] {
    this.calls.push({ method: "list" });
    return [NODE, { ...NODE, digest: `sha256:${"b".repeat(64)}`, references: [], created: undefined, usedBy: ["0123456789abcdef"] }];
  }

  inspect(reference: string, options: { field?: string } = {}): ImageRecordView {
    this.calls.push({ method: "inspect", reference, ...(options.field === undefined ? {} : { field: options.field }) });
    if (reference === "node:20" || reference === NODE.digest) return NODE;
    throw new VmctlError("NOT_FOUND", `no image ${reference}`);
  }

  async remove(reference: string, options: { force?: boolean; field?: string } = {}): Promise<{ untagged: string[]; deleted: string[] }> {
    this.calls.push({ method: "remove", reference, ...(options.field === undefined ? {} : { field: options.field }) });
    if (reference === "in-use" && !options.force) throw new VmctlError("FAILED_PRECONDITION", "image in-use is used by service web");
    if (reference !== "node:20" && reference !== "in-use") throw new VmctlError("NOT_FOUND", `no image ${reference}`);
    return { untagged: [NODE.references[0] as string], deleted: [NODE.digest] };
  }

  async prune(options: { all?: boolean } = {}): Promise<{ removed: string[]; reclaimedBytes: number }> {
    this.calls.push({ method: options.all ? "prune-all" : "prune" });
    return { removed: [NODE.digest], reclaimedBytes: 180_000_000 };
  }
}

const now = new Date(1_700_000_000_000);
const RECORD: ServiceRecord = { id: "0123456789abcdef", name: "web", target: "microvm", labels: {}, spec: {}, dependsOn: [], phase: "running", addresses: [], ready: true, createdAt: now, updatedAt: now };

interface Harness {
  readonly client: OrchestratorClient;
  readonly store: FakeImageStore;
  readonly creates: CreateServiceInput[];
  close(): void;
}

async function serve(options: { images?: boolean | ImageStoreApi } = {}): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), "vmctld-images-test-"));
  const store = new FakeImageStore();
  const creates: CreateServiceInput[] = [];
  const engine: ServedEngine = {
    ...({} as OrchestratorApi),
    async create(input, opts) {
      creates.push(input);
      opts?.progress?.({ phase: "download", item: NODE.layers[0]?.digest, current: 5, total: 10 });
      opts?.progress?.({ phase: "mkfs", message: "making the disk" });
      return RECORD;
    },
    ...(options.images === false ? {} : { images: typeof options.images === "object" ? options.images : store }),
  };
  const server = new grpc.Server();
  server.addService(OrchestratorService, orchestratorHandlers(engine, silentLogger, new CallTracker()));
  const socket = join(dir, "s.sock");
  await bindUnixSocket(server, socket);
  const client = new OrchestratorClient(`unix://${socket}`, grpc.credentials.createInsecure());
  return {
    client,
    store,
    creates,
    close() {
      client.close();
      server.forceShutdown();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

interface Outcome {
  readonly code: grpc.status;
  readonly message: string;
  readonly field?: string;
  readonly messages: unknown[];
}

function outcomeOf(err: grpc.ServiceError | null, messages: unknown[]): Outcome {
  if (err === null) return { code: grpc.status.OK, message: "", messages };
  const raw = err.metadata?.get(STATUS_DETAILS_KEY)[0];
  const rich = raw instanceof Buffer ? decodeRichStatus(raw) : undefined;
  const field = rich?.errorInfo?.metadata.field;
  return { code: err.code, message: err.details, ...(field === undefined ? {} : { field }), messages };
}

function unary<Req>(call: (req: Req, cb: grpc.requestCallback<unknown>) => unknown, request: Req): Promise<Outcome> {
  return new Promise((resolve) => {
    call(request, (err, response) => resolve(outcomeOf(err, response === undefined ? [] : [response])));
  });
}

function stream(s: grpc.ClientReadableStream<unknown>): Promise<Outcome> {
  const messages: unknown[] = [];
  return new Promise((resolve) => {
    s.on("data", (m: unknown) => messages.push(m));
    s.on("error", (err: grpc.ServiceError) => resolve(outcomeOf(err, messages)));
    s.on("end", () => resolve(outcomeOf(null, messages)));
  });
}

/** A uint64 as decoded (a number, or a Long when the long package is installed); null when unset. */
const num = (value: number | { toNumber(): number } | null | undefined): number | null =>
  value == null ? null : typeof value === "number" ? value : value.toNumber();

type RefMethod = "pullImage" | "inspectImage" | "removeImage";
const REF_METHODS: readonly RefMethod[] = ["pullImage", "inspectImage", "removeImage"];

function callWithReference(h: Harness, method: RefMethod, reference: string): Promise<Outcome> {
  if (method === "pullImage") return stream(h.client.pullImage({ reference }));
  if (method === "inspectImage") return unary((r, cb) => h.client.inspectImage(r, cb), { reference });
  return unary((r, cb) => h.client.removeImage(r, cb), { reference });
}

const CONTROL = [..."\u0000\u0001\u0007\b\t\n\r\u001b\u007f\u0085\u009f"];

/** A string with `bad` put somewhere in it. */
const withInside = (bad: fc.Arbitrary<string>) =>
  fc.tuple(fc.string({ maxLength: 20 }), bad, fc.string({ maxLength: 20 })).map(([a, b, c]) => `${a}${b}${c}`);

const refusal = (t: { is(a: unknown, b: unknown, m?: string): void; true(a: boolean, m?: string): void }, outcome: Outcome, what: string): void => {
  t.is(outcome.code, grpc.status.INVALID_ARGUMENT, `${what}: ${outcome.message}`);
  t.is(outcome.field, "reference", what);
  t.true(outcome.message.startsWith("reference: "), `${what}: ${outcome.message}`);
  t.true([...outcome.message].length <= 300, `${what}: a message of ${outcome.message.length} characters`);
};

test("references with control characters, NUL, white space, non-ASCII (registry) or over 4 KiB are INVALID_ARGUMENT naming reference; the store never sees them", async (t) => {
  const h = await serve();
  try {
    const hostile = fc.oneof(
      withInside(fc.constantFrom(...CONTROL)),
      withInside(fc.constantFrom(" ", "\u00a0", "\u2028", "\u3000")),
      // Any Unicode beyond ASCII in what is not an archive path.
      withInside(fc.string({ unit: "binary", minLength: 1, maxLength: 4 }).filter((s) => /[^\x00-\x7f]/.test(s))).filter((s) => !/^(docker-archive|oci):/.test(s)),
      fc.integer({ min: MAX_IMAGE_REFERENCE_BYTES + 1, max: 4 * 1024 * 1024 - 1024 }).map((n) => "a".repeat(n)),
      fc.constant(`docker-archive:/${"é".repeat(MAX_IMAGE_REFERENCE_BYTES)}`),
      fc.constant(""),
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...REF_METHODS), hostile, async (method, reference) => {
        const before = h.store.calls.length;
        refusal(t, await callWithReference(h, method, reference), `${method} ${JSON.stringify(reference.slice(0, 40))}`);
        t.is(h.store.calls.length, before, "the store was not called");
      }),
      { numRuns: 150 },
    );
  } finally {
    h.close();
  }
});

test("any reference is either refused naming reference or handed to the store as sent; never another failure", async (t) => {
  const h = await serve();
  try {
    const anything = fc.oneof(
      fc.string({ unit: "binary", maxLength: 64 }),
      fc.string({ unit: fc.constantFrom(...CONTROL, "a", "é", "ключ", "\u{1F600}", ":", "/", "@", "docker-archive:", "oci:"), maxLength: 12 }),
      fc.stringMatching(/^[a-z0-9.:/@_-]{1,80}$/),
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...REF_METHODS), anything, async (method, reference) => {
        const outcome = await callWithReference(h, method, reference);
        if (outcome.code === grpc.status.INVALID_ARGUMENT) {
          refusal(t, outcome, JSON.stringify(reference));
          return;
        }
        // The fake store answers OK or NOT_FOUND; what it was asked is exactly what was sent.
        t.true([grpc.status.OK, grpc.status.NOT_FOUND].includes(outcome.code), `${grpc.status[outcome.code]}: ${outcome.message}`);
        t.is(h.store.calls.at(-1)?.reference, reference);
        t.is(h.store.calls.at(-1)?.field, "reference", "the store is told the request's field");
      }),
      { numRuns: 200 },
    );
    // Archive paths may hold any Unicode (but no control characters).
    t.is((await callWithReference(h, "inspectImage", "oci:/srv/images/café:v1")).code, grpc.status.NOT_FOUND);
  } finally {
    h.close();
  }
});

test("a reference that is not valid UTF-8 is INVALID_ARGUMENT naming reference", async (t) => {
  const h = await serve();
  try {
    // Field 1, length 3: "a", then a lone continuation byte and an overlong NUL.
    const bytes = Buffer.from([0x0a, 0x03, 0x61, 0x80, 0xc0]);
    const raw = new grpc.Client(h.client.getChannel().getTarget(), grpc.credentials.createInsecure());
    const outcome = await new Promise<Outcome>((resolve) =>
      raw.makeUnaryRequest(OrchestratorService.inspectImage.path, (b: Buffer) => b, (b: Buffer) => b, bytes, (err, res) => resolve(outcomeOf(err, res ? [res] : []))),
    );
    raw.close();
    t.is(outcome.code, grpc.status.INVALID_ARGUMENT, outcome.message);
    t.is(outcome.field, "reference");
  } finally {
    h.close();
  }
});

test("the real image store's errors name the gRPC field reference, never image: not held, a digest alone, the engine refusing, a bad reference", async (t) => {
  const stateDir = mkdtempSync(join(tmpdir(), "vmctld-images-store-"));
  const state = StateStore.open(stateDir);
  // An engine that refuses every source, as it does a reference or archive it cannot read.
  const native: NativeImageApi = {
    prepareImage: async (request) => {
      throw Object.assign(new Error(`INVALID_ARGUMENT: no linux/amd64 image in ${request.source}`), { code: "INVALID_ARGUMENT" });
    },
    createWritableLayer: async () => undefined,
  };
  const images = new ImageStore({ storeDir: join(stateDir, "images"), db: state.database, native, log: silentLogger });
  const h = await serve({ images });
  try {
    const cases: [RefMethod, string, grpc.status, RegExp][] = [
      ["inspectImage", "nope:1", grpc.status.NOT_FOUND, /^no image nope:1$/],
      ["removeImage", "nope:1", grpc.status.NOT_FOUND, /^no image nope:1$/],
      ["pullImage", `sha256:${"1".repeat(64)}`, grpc.status.NOT_FOUND, /a digest alone cannot be pulled/],
      ["pullImage", "127.0.0.1:9/app:1", grpc.status.INVALID_ARGUMENT, /^reference: pulling 127\.0\.0\.1:9\/app:1: no linux\/amd64/],
      ["pullImage", "oci:/srv/café:v1", grpc.status.INVALID_ARGUMENT, /^reference: pulling oci:\/srv\/café:v1: /],
      ["inspectImage", "nöde:20", grpc.status.INVALID_ARGUMENT, /^reference: "nöde:20" is not an image reference/],
      ["removeImage", "node 20", grpc.status.INVALID_ARGUMENT, /^reference: "node 20" must not contain white space/],
    ];
    for (const [method, reference, code, message] of cases) {
      const outcome = await callWithReference(h, method, reference);
      t.is(outcome.code, code, `${method} ${reference}: ${outcome.message}`);
      t.regex(outcome.message, message, `${method} ${reference}`);
      t.is(outcome.field, "reference", `${method} ${reference}`);
    }
  } finally {
    h.close();
    state.close();
    rmSync(stateDir, { recursive: true, force: true });
  }
});

test("PullImage streams progress (with each layer's digest) and ends with the Image", async (t) => {
  const h = await serve();
  try {
    const outcome = await stream(h.client.pullImage({ reference: "node:20" }));
    t.is(outcome.code, grpc.status.OK, outcome.message);
    const events = outcome.messages as vmctl.v1.PullImageEvent[];
    t.deepEqual(
      events.slice(0, -1).map((e) => [e.progress?.phase, e.progress?.item?.slice(0, 8), num(e.progress?.current), num(e.progress?.total)]),
      // Reported all at once (the fake store does not wait between them): each layer's
      // newer download event replaced the one not yet sent.
      [
        ["resolve", "", null, null],
        ["download", "sha256:1", 50_100_000, 50_100_000],
        ["download", "sha256:2", 1234, 1234],
        ["done", "", null, null],
      ],
    );
    t.is(events.at(-1)?.image?.digest, NODE.digest);
    t.deepEqual(h.store.calls, [{ method: "pull", reference: "node:20", field: "reference" }]);
  } finally {
    h.close();
  }
});

test("a pull that fails ends the stream with the store's status (a registry refusing is PERMISSION_DENIED, not INTERNAL)", async (t) => {
  const h = await serve();
  try {
    h.store.failPullWith = new VmctlError("PERMISSION_DENIED", "registry 127.0.0.1:5000 refused: 403");
    const outcome = await stream(h.client.pullImage({ reference: "127.0.0.1:5000/app:1" }));
    t.is(outcome.code, grpc.status.PERMISSION_DENIED);
    t.is(outcome.message, "registry 127.0.0.1:5000 refused: 403");
    t.true(outcome.messages.length > 0, "progress came first");
  } finally {
    h.close();
  }
});

test("a client that goes away mid-pull ends its stream cleanly; the pull goes on and its failure is no unhandled rejection", async (t) => {
  const h = await serve();
  const rejections: unknown[] = [];
  const onRejection = (reason: unknown): void => void rejections.push(reason);
  process.on("unhandledRejection", onRejection);
  try {
    let release!: () => void;
    h.store.hold = new Promise((resolve) => (release = resolve));
    h.store.failPullWith = new VmctlError("UNAVAILABLE", "registry unreachable");
    const call = h.client.pullImage({ reference: "node:20" });
    const ended = stream(call);
    await new Promise((resolve) => call.once("data", resolve));
    call.cancel();
    t.is((await ended).code, grpc.status.CANCELLED);
    release();
    await new Promise((resolve) => setTimeout(resolve, 50));
    t.deepEqual(rejections, []);
    // The server answers the next call: nothing is stuck.
    h.store.hold = undefined;
    h.store.failPullWith = undefined;
    t.is((await stream(h.client.pullImage({ reference: "node:20" }))).code, grpc.status.OK);
  } finally {
    process.off("unhandledRejection", onRejection);
    h.close();
  }
});

test("list, inspect, remove and prune answer as the store does; its statuses come through", async (t) => {
  const h = await serve();
  try {
    const list = await unary((r, cb) => h.client.listImages(r, cb), {});
    const images = (list.messages[0] as vmctl.v1.ListImagesResponse).images;
    t.deepEqual(images.map((i) => [i.digest?.slice(0, 8), i.references, i.usedBy, num(i.createdUnixMs)]), [
      ["sha256:a", ["docker.io/library/node:20"], [], Date.parse("2024-05-01T10:00:00.123Z")],
      ["sha256:b", [], ["0123456789abcdef"], null],
    ]);
    t.is((await unary((r, cb) => h.client.inspectImage(r, cb), { reference: "node:20" })).code, grpc.status.OK);
    const missing = await unary((r, cb) => h.client.inspectImage(r, cb), { reference: "nope:1" });
    t.is(missing.code, grpc.status.NOT_FOUND);
    t.is(missing.message, "no image nope:1");
    const inUse = await unary((r, cb) => h.client.removeImage(r, cb), { reference: "in-use" });
    t.is(inUse.code, grpc.status.FAILED_PRECONDITION);
    const forced = await unary((r, cb) => h.client.removeImage(r, cb), { reference: "in-use", force: true });
    t.deepEqual({ ...(forced.messages[0] as vmctl.v1.RemoveImageResponse) }, { untagged: ["docker.io/library/node:20"], deleted: [NODE.digest] });
    const pruned = await unary((r, cb) => h.client.pruneImages(r, cb), { all: true });
    const answer = pruned.messages[0] as vmctl.v1.PruneImagesResponse;
    t.deepEqual([answer.removed, num(answer.reclaimedBytes)], [[NODE.digest], 180_000_000]);
    t.is(h.store.calls.at(-1)?.method, "prune-all");
  } finally {
    h.close();
  }
});

test("without an image store, the image methods are UNIMPLEMENTED", async (t) => {
  const h = await serve({ images: false });
  try {
    const outcome = await unary((r, cb) => h.client.listImages(r, cb), {});
    t.is(outcome.code, grpc.status.UNIMPLEMENTED);
    t.is(outcome.message, "this vmctld has no image store");
    t.is((await stream(h.client.pullImage({ reference: "node:20" }))).code, grpc.status.UNIMPLEMENTED);
  } finally {
    h.close();
  }
});

test("CreateServiceWithProgress streams the target's progress, then the Service; input is converted as for CreateService", async (t) => {
  const h = await serve();
  try {
    const outcome = await stream(h.client.createServiceWithProgress({ target: "microvm", run: { image: "node:20", command: ["node"] }, start: true }));
    t.is(outcome.code, grpc.status.OK, outcome.message);
    const events = outcome.messages as vmctl.v1.CreateServiceEvent[];
    t.deepEqual(events.map((e) => e.event), ["progress", "progress", "service"]);
    t.is(events[0]?.progress?.item, NODE.layers[0]?.digest);
    t.is(events[1]?.progress?.message, "making the disk");
    t.is(events[2]?.service?.id, RECORD.id);
    t.deepEqual(h.creates[0]?.run, { image: "node:20", command: ["node"], env: {}, mounts: [], copyOut: [] });
  } finally {
    h.close();
  }
});
