// Spec validation: every refusal names its field path; accepted specs keep only what was said.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { ValidationError } from "@vmctl/core/contract";
import { DockerFactory } from "./factory.js";
import { MemoryLogger } from "./testing/context.js";
import { parseDockerSpec } from "./spec.js";

const dir = mkdtempSync(join(tmpdir(), "vmctl-docker-spec-"));
const archive = join(dir, "image.tar");
writeFileSync(archive, "not checked at validate");
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

const image = "vmctl-test/busybox:1";

function refusedAt(t: import("ava").ExecutionContext, spec: unknown, field: string, message?: RegExp): void {
  const err = t.throws(() => parseDockerSpec(spec), { instanceOf: ValidationError }, `expected ${field} to be refused`);
  t.is(err?.field, field);
  t.is(err?.code, "INVALID_ARGUMENT");
  if (message) t.regex(err?.message ?? "", message);
}

test("a full spec is accepted and returned as given (paths normalised)", (t) => {
  const spec = {
    image,
    args: ["sh", "-c", "echo hi"],
    env: { A: "1", EMPTY: "" },
    workdir: "/srv/./app",
    mounts: [{ source: dir, destination: "/data/", readOnly: true }],
    resources: { cpus: 0.5, memoryMiB: 64 },
    network: "my-net_1",
  };
  t.deepEqual(parseDockerSpec(spec), { ...spec, workdir: "/srv/app", mounts: [{ source: dir, destination: "/data/", readOnly: true }] });
  t.deepEqual(parseDockerSpec({ image }), { image }, "args, env... are optional: the image's own are used");
  t.deepEqual(parseDockerSpec({ imageArchive: archive, args: ["true"] }), { imageArchive: archive, args: ["true"] });
});

test("validate(validate(s)) equals validate(s) and survives JSON", (t) => {
  const once = parseDockerSpec({ image, args: ["x"], mounts: [{ source: dir, destination: "/m" }], network: "none" });
  t.deepEqual(parseDockerSpec(JSON.parse(JSON.stringify(once))), once);
});

test("image or imageArchive: exactly one", (t) => {
  refusedAt(t, {}, "image", /required/);
  refusedAt(t, { image, imageArchive: archive }, "imageArchive", /not both/);
  refusedAt(t, { image: "" }, "image");
  refusedAt(t, { image: "has space" }, "image");
  refusedAt(t, { image: 3 }, "image");
  refusedAt(t, { imageArchive: "relative.tar" }, "imageArchive", /absolute/);
  refusedAt(t, { imageArchive: join(dir, "missing.tar") }, "imageArchive", /does not exist/);
  refusedAt(t, { imageArchive: dir }, "imageArchive", /not a file/);
});

test("unknown fields are refused at every level", (t) => {
  refusedAt(t, { image, cmd: ["x"] }, "cmd", /unknown field/);
  refusedAt(t, { image, mounts: [{ source: dir, destination: "/m", mode: "ro" }] }, "mounts[0].mode");
  refusedAt(t, { image, resources: { memoryBytes: 1 } }, "resources.memoryBytes");
  refusedAt(t, null, "");
  refusedAt(t, [image], "");
});

test("args, env, workdir", (t) => {
  refusedAt(t, { image, args: "echo" }, "args");
  refusedAt(t, { image, args: [] }, "args", /omit args/);
  refusedAt(t, { image, args: [""] }, "args[0]");
  refusedAt(t, { image, args: ["sh", null] }, "args[1]");
  refusedAt(t, { image, args: ["a\0b"] }, "args[0]", /NUL/);
  refusedAt(t, { image, env: [] }, "env");
  refusedAt(t, { image, env: { "": "x" } }, "env.");
  refusedAt(t, { image, env: { PATH: 1 } }, "env.PATH");
  refusedAt(t, { image, workdir: "relative" }, "workdir");
  refusedAt(t, { image, workdir: "/a/../b" }, "workdir");
});

test("mounts", (t) => {
  refusedAt(t, { image, mounts: {} }, "mounts");
  refusedAt(t, { image, mounts: ["x"] }, "mounts[0]");
  refusedAt(t, { image, mounts: [{ source: "rel", destination: "/m" }] }, "mounts[0].source");
  refusedAt(t, { image, mounts: [{ source: join(dir, "nope"), destination: "/m" }] }, "mounts[0].source", /does not exist/);
  refusedAt(t, { image, mounts: [{ source: dir, destination: "m" }] }, "mounts[0].destination");
  refusedAt(t, { image, mounts: [{ source: dir, destination: "/m" }, { source: dir, destination: "/" }] }, "mounts[1].destination");
  refusedAt(t, { image, mounts: [{ source: dir, destination: "/m", readOnly: "yes" }] }, "mounts[0].readOnly");
});

test("resources and network", (t) => {
  refusedAt(t, { image, resources: { cpus: 0 } }, "resources.cpus");
  refusedAt(t, { image, resources: { cpus: "1" } }, "resources.cpus");
  refusedAt(t, { image, resources: { memoryMiB: 5 } }, "resources.memoryMiB", /at least 6/);
  refusedAt(t, { image, resources: { memoryMiB: 6.5 } }, "resources.memoryMiB");
  refusedAt(t, { image, network: "host" }, "network", /shares/);
  refusedAt(t, { image, network: "container:abc" }, "network");
  refusedAt(t, { image, network: "-bad" }, "network");
  refusedAt(t, { image, network: 1 }, "network");
});

test("specFromRun: IMAGE -- CMD maps to image and args; an absolute path is an archive; --spec wins", (t) => {
  const factory = new DockerFactory("/nonexistent/docker.sock", new MemoryLogger());
  t.deepEqual(factory.specFromRun({ image: "alpine:3", command: ["echo", "hi"], env: { A: "1" }, spec: {} }), { image: "alpine:3", args: ["echo", "hi"], env: { A: "1" } });
  t.deepEqual(factory.specFromRun({ image: archive, command: [], env: {}, spec: {} }), { imageArchive: archive });
  t.deepEqual(
    factory.specFromRun({ image: "alpine:3", command: ["true"], env: { B: "2" }, spec: { workdir: "/w", env: { A: "1" } } }),
    { image: "alpine:3", args: ["true"], workdir: "/w", env: { A: "1", B: "2" } },
  );
  t.deepEqual(factory.validate(factory.specFromRun({ image, command: ["true"], env: {}, spec: {} })), { image, args: ["true"] });
});
