import test from "ava";
import { vmctl } from "../gen/protos.js";
import { imageFromProto, imageToProto, progressFromProto, progressToProto, prunedFromProto, prunedToProto, removedFromProto, removedToProto, type ImageSource } from "./images.js";

const pb = vmctl.v1;

test("an image record goes onto the wire and decodes with every field; an unknown or absent creation time is left unset", (t) => {
  const image: ImageSource = {
    digest: `sha256:${"a".repeat(64)}`,
    references: ["docker.io/library/node:20", "node:lts"],
    configDigest: `sha256:${"c".repeat(64)}`,
    layers: [{ digest: `sha256:${"1".repeat(64)}`, size: 50_100_000, mediaType: "application/vnd.oci.image.layer.v1.tar+gzip" }],
    diskBytes: 2 ** 40,
    config: { entrypoint: ["/bin/sh", "-c"], cmd: ["node", "ключ"], env: ["A=1", "B="], workingDir: "/app", user: "1000:1000", labels: { "org.opencontainers.image.title": "node" } },
    created: "1970-01-01T00:00:00Z",
    pulledAt: new Date(1_700_000_000_123),
    usedBy: ["0123456789abcdef"],
  };
  const wire = pb.Image.toObject(pb.Image.decode(pb.Image.encode(imageToProto(image)).finish()), { longs: Number, defaults: true });
  t.deepEqual(wire, {
    digest: image.digest,
    references: ["docker.io/library/node:20", "node:lts"],
    configDigest: image.configDigest,
    config: { entrypoint: ["/bin/sh", "-c"], cmd: ["node", "ключ"], env: ["A=1", "B="], workingDir: "/app", user: "1000:1000", labels: { "org.opencontainers.image.title": "node" } },
    layers: [{ digest: `sha256:${"1".repeat(64)}`, size: 50_100_000, mediaType: "application/vnd.oci.image.layer.v1.tar+gzip" }],
    diskBytes: 2 ** 40,
    pulledAtUnixMs: 1_700_000_000_123,
    usedBy: ["0123456789abcdef"],
    // 1970 is a time (reproducible builds give it), not "unknown".
    createdUnixMs: 0,
  });
  for (const created of [undefined, "", "yesterday"]) {
    const decoded = pb.Image.decode(pb.Image.encode(imageToProto({ ...image, created })).finish());
    t.false(Object.prototype.hasOwnProperty.call(pb.Image.toObject(decoded), "createdUnixMs"), String(created));
  }
});

test("progress events: item and message default to empty, counts only when whole and not negative", (t) => {
  t.deepEqual(progressToProto({ phase: "download", item: "sha256:1", current: 5, total: 10 }), { phase: "download", item: "sha256:1", current: 5, total: 10, message: "" });
  t.deepEqual(progressToProto({ phase: "mkfs", message: "disk" }), { phase: "mkfs", item: "", message: "disk" });
  t.deepEqual(progressToProto({ phase: "x", current: -1, total: Number.NaN }), { phase: "x", item: "", message: "" });
  t.deepEqual(progressToProto({ phase: "x", current: 1.5, total: Infinity }), { phase: "x", item: "", message: "" });
});

test("images, progress, removals and prunes the server sends decode on the client", (t) => {
  const image: ImageSource = {
    digest: `sha256:${"a".repeat(64)}`,
    references: ["node:20"],
    configDigest: `sha256:${"c".repeat(64)}`,
    layers: [{ digest: `sha256:${"1".repeat(64)}`, size: 2 ** 40, mediaType: "m" }],
    diskBytes: 2 ** 40,
    config: { entrypoint: ["/bin/sh"], cmd: [], env: ["A=1"], workingDir: "", user: "", labels: { a: "b" } },
    created: "2024-01-02T03:04:05.678Z",
    pulledAt: new Date(1_700_000_000_123),
    usedBy: [],
  };
  const decoded = imageFromProto(pb.Image.decode(pb.Image.encode(imageToProto(image)).finish()));
  t.deepEqual(decoded, { ...image, created: new Date("2024-01-02T03:04:05.678Z") });
  const { created: _created, ...undated } = image;
  t.false("created" in imageFromProto(pb.Image.decode(pb.Image.encode(imageToProto(undated)).finish())));

  for (const event of [{ phase: "download", item: "sha256:1", current: 0, total: 2 ** 40 }, { phase: "mkfs", message: "disk" }]) {
    t.deepEqual(progressFromProto(pb.Progress.decode(pb.Progress.encode(progressToProto(event)).finish())), event);
  }
  const removed = { untagged: ["a:1"], deleted: [`sha256:${"a".repeat(64)}`] };
  t.deepEqual(removedFromProto(pb.RemoveImageResponse.decode(pb.RemoveImageResponse.encode(removedToProto(removed)).finish())), removed);
  const pruned = { removed: ["x"], reclaimedBytes: 2 ** 40 };
  t.deepEqual(prunedFromProto(pb.PruneImagesResponse.decode(pb.PruneImagesResponse.encode(prunedToProto(pruned)).finish())), pruned);
});
