import test from "ava";
import { google, vmctl } from "@vmctl/proto";
import { ValidationError, type ServiceRecord } from "@vmctl/core";
import { createInputFromProto, filterFromProto, imageToProto, progressToProto, serviceToProto } from "./convert.js";
import type { ImageRecordView } from "./image-store-api.js";
import { structFromJson } from "@vmctl/proto";

const pb = vmctl.v1;

test("a create request with the run shorthand becomes the engine's input", (t) => {
  const wire = pb.CreateServiceRequest.decode(
    pb.CreateServiceRequest.encode({
      target: "oci",
      labels: { a: "b" },
      spec: structFromJson({ cwd: "/" }),
      run: { image: "/rootfs", command: ["sh", "-c", "true"], env: { K: "V" } },
      start: true,
      readiness: { tcp: { port: 80 }, timeoutMs: 5000 },
    }).finish(),
  );
  t.deepEqual(createInputFromProto(wire), {
    target: "oci",
    spec: { cwd: "/" },
    labels: { a: "b" },
    dependsOn: [],
    readiness: { check: { kind: "tcp", port: 80 }, timeoutMs: 5000 },
    start: true,
    run: { image: "/rootfs", command: ["sh", "-c", "true"], env: { K: "V" } },
  });
  const plain = createInputFromProto(pb.CreateServiceRequest.decode(pb.CreateServiceRequest.encode({ target: "oci" }).finish()));
  t.is(plain.spec, undefined);
  t.is(plain.run, undefined);
  const noImage = createInputFromProto(pb.CreateServiceRequest.decode(pb.CreateServiceRequest.encode({ target: "x", run: { command: ["a"] } }).finish()));
  t.deepEqual(noImage.run, { command: ["a"], env: {} });
  t.deepEqual(noImage.spec, {});
});

test("a service record round-trips its fields onto the wire", (t) => {
  const at = new Date(1_700_000_000_000);
  const record: ServiceRecord = {
    id: "0123456789abcdef",
    name: "web",
    target: "oci",
    labels: { tier: "front" },
    spec: { rootfs: "/r", args: ["true"] },
    dependsOn: [],
    phase: "exited",
    exit: { code: null, signal: "SIGKILL", reason: "stopped", at },
    addresses: [],
    ready: false,
    status: "target oci unavailable",
    createdAt: at,
    updatedAt: at,
  };
  const wire = pb.Service.decode(pb.Service.encode(serviceToProto(record)).finish());
  t.is(wire.phase, pb.Phase.PHASE_EXITED);
  t.is(wire.exit?.signal, "SIGKILL");
  t.false(wire.exit?.code != null);
  t.is(wire.status, "target oci unavailable");
  t.is(Number(String(wire.createdUnixMs)), at.getTime());
});

test("list filters: phases by enum, unknown phase names the field", (t) => {
  t.deepEqual(filterFromProto({ labels: ["a=b"], target: "oci", phases: [pb.Phase.PHASE_RUNNING] }), {
    labels: ["a=b"],
    target: "oci",
    phases: ["running"],
  });
  t.throws(() => filterFromProto({ phases: [99 as vmctl.v1.Phase] }), { message: /^phases\[0\]: / });
});

test("request_id reaches the engine as requestId; absent stays absent", (t) => {
  const wire = (req: vmctl.v1.ICreateServiceRequest) => pb.CreateServiceRequest.decode(pb.CreateServiceRequest.encode(req).finish());
  t.is(createInputFromProto(wire({ target: "oci", requestId: "550e8400-e29b-41d4-a716-446655440000" })).requestId, "550e8400-e29b-41d4-a716-446655440000");
  t.false("requestId" in createInputFromProto(wire({ target: "oci" })));
});

test("a spec nested past what JSON conversion takes is INVALID_ARGUMENT naming the path, not a stack overflow", (t) => {
  let value: google.protobuf.IValue = { nullValue: 0 };
  for (let i = 0; i < 10_000; i++) value = { structValue: { fields: { a: value } } };
  const err = t.throws(() => createInputFromProto({ target: "oci", spec: { fields: { a: value } } }), { instanceOf: ValidationError });
  t.regex(err.field, /^spec(\.a)+$/);
  t.regex(err.message, /nested more than 100 levels deep$/);
});

test("an image record goes onto the wire and decodes with every field; an unknown or absent creation time is left unset", (t) => {
  const image: ImageRecordView = {
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
