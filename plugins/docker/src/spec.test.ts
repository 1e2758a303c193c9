// Spec validation: every refusal names its field path; accepted specs keep only what was said.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { ValidationError, type RunInput } from "@vmctl/core/contract";
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
  refusedAt(t, { image, mounts: [{ source: dir, destination: "/m" }, { source: archive, destination: "/n" }, { source: dir, destination: "/m/" }] }, "mounts[2].destination", /mounted already \(mounts\[0\]\)/);
  t.deepEqual(parseDockerSpec({ image, mounts: [{ source: dir, destination: "/m" }, { source: dir, destination: "/m/n" }] }).mounts?.length, 2, "nested destinations are fine");
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

/** A RunInput: what `vmctl run` gives when nothing else is said. */
function run(input: Partial<RunInput>): RunInput {
  return { command: [], env: {}, mounts: [], copyOut: [], spec: {}, ...input };
}

test("specFromRun: IMAGE -- CMD maps to image and args; an absolute path is an archive; --spec wins", (t) => {
  const factory = new DockerFactory("/nonexistent/docker.sock", new MemoryLogger());
  t.deepEqual(factory.specFromRun(run({ image: "alpine:3", command: ["echo", "hi"], env: { A: "1" } })), { image: "alpine:3", args: ["echo", "hi"], env: { A: "1" } });
  t.deepEqual(factory.specFromRun(run({ image: archive })), { imageArchive: archive });
  t.deepEqual(
    factory.specFromRun(run({ image: "alpine:3", command: ["true"], env: { B: "2" }, spec: { workdir: "/w", env: { A: "1" } } })),
    { image: "alpine:3", args: ["true"], workdir: "/w", env: { A: "1", B: "2" } },
  );
  t.deepEqual(factory.validate(factory.specFromRun(run({ image, command: ["true"] }))), { image, args: ["true"] });
});

test("specFromRun: -v mounts become bind mounts after the spec's own (readOnly kept as said); copyOut adds nothing", (t) => {
  const factory = new DockerFactory("/nonexistent/docker.sock", new MemoryLogger());
  const mounts = [{ source: dir, destination: "/work" }, { source: archive, destination: "/in/image.tar", readOnly: true }, { source: dir, destination: "/rw", readOnly: false }];
  const spec = factory.specFromRun(run({ image, command: ["true"], mounts, copyOut: ["/work/out"] }));
  t.deepEqual(spec, { image, args: ["true"], mounts });
  t.deepEqual(factory.validate(spec), { image, args: ["true"], mounts }, "the mapped spec is valid as it stands");

  const own = { source: dir, destination: "/explicit", readOnly: true };
  t.deepEqual(factory.specFromRun(run({ image, mounts, spec: { mounts: [own], args: ["false"] } })), { image, args: ["false"], mounts: [own, ...mounts] }, "the spec's own mounts come first; its args win");
  t.deepEqual(factory.specFromRun(run({ image, spec: { mounts: [own] } })), { image, mounts: [own] }, "no -v: the spec's mounts as they are");
  t.deepEqual(factory.specFromRun(run({ image, mounts: [], copyOut: ["/a", "/b"] })), { image }, "no mounts, no field; copyOut needs nothing");
});

test("specFromRun: a -v mount validate refuses is named as the spec's mounts[i]", (t) => {
  const factory = new DockerFactory("/nonexistent/docker.sock", new MemoryLogger());
  const clash = factory.specFromRun(run({ image, mounts: [{ source: dir, destination: "/data" }], spec: { mounts: [{ source: archive, destination: "/data" }] } }));
  const err = t.throws(() => factory.validate(clash), { instanceOf: ValidationError });
  t.is(err?.field, "mounts[1].destination");
  t.regex(err?.message ?? "", /\/data is mounted already/);
  const notList = factory.specFromRun(run({ image, mounts: [{ source: dir, destination: "/data" }], spec: { mounts: "x" } }));
  t.is(t.throws(() => factory.validate(notList), { instanceOf: ValidationError })?.field, "mounts");
});
