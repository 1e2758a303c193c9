import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { ValidationError } from "@vmctl/core/contract";
import { parseOciSpec } from "./spec.js";

const dir = mkdtempSync(join(tmpdir(), "vmctl-oci-spec-"));
const file = join(dir, "file");
writeFileSync(file, "x");
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

const base = { rootfs: dir, args: ["sh"] };

function fieldOf(t: import("ava").ExecutionContext, spec: unknown): string {
  const err = t.throws(() => parseOciSpec(spec), { instanceOf: ValidationError });
  t.is(err?.code, "INVALID_ARGUMENT");
  return err?.field ?? "";
}

test("a minimal spec validates and keeps only what was given", (t) => {
  t.deepEqual(parseOciSpec(base), { rootfs: dir, args: ["sh"] });
});

test("a full spec validates", (t) => {
  const spec = {
    rootfs: dir,
    args: ["sh", "-c", "true"],
    env: { FOO: "bar", EMPTY: "" },
    cwd: "/srv/app/",
    user: { uid: 1000, gid: 100 },
    mounts: [{ source: dir, destination: "/data", readOnly: true }, { source: file, destination: "/etc/x" }],
    resources: { memoryBytes: 64 * 1024 * 1024, cpus: 0.5, pids: 32 },
    runtime: "crun",
    readonlyRootfs: false,
  };
  t.deepEqual(parseOciSpec(spec), { ...spec, cwd: "/srv/app/" });
});

test("the spec must be an object", (t) => {
  t.is(fieldOf(t, null), "");
  t.is(fieldOf(t, ["x"]), "");
});

test("unknown fields are refused at every level", (t) => {
  t.is(fieldOf(t, { ...base, image: "alpine" }), "image");
  t.is(fieldOf(t, { ...base, user: { uid: 0, gid: 0, name: "root" } }), "user.name");
  t.is(fieldOf(t, { ...base, mounts: [{ source: dir, destination: "/a", rw: true }] }), "mounts[0].rw");
  t.is(fieldOf(t, { ...base, resources: { memory: 1 } }), "resources.memory");
});

test("rootfs must be an existing absolute directory", (t) => {
  t.is(fieldOf(t, { args: ["sh"] }), "rootfs");
  t.is(fieldOf(t, { ...base, rootfs: "relative/dir" }), "rootfs");
  t.is(fieldOf(t, { ...base, rootfs: join(dir, "missing") }), "rootfs");
  t.is(fieldOf(t, { ...base, rootfs: file }), "rootfs");
});

test("args must be a non-empty array of strings", (t) => {
  t.is(fieldOf(t, { rootfs: dir }), "args");
  t.is(fieldOf(t, { ...base, args: [] }), "args");
  t.is(fieldOf(t, { ...base, args: "sh -c true" }), "args");
  t.is(fieldOf(t, { ...base, args: [42] }), "args[0]");
  t.is(fieldOf(t, { ...base, args: ["sh", "-c", null] }), "args[2]");
  t.is(fieldOf(t, { ...base, args: [""] }), "args[0]");
});

test("env values must be strings and names well formed", (t) => {
  t.is(fieldOf(t, { ...base, env: ["A=1"] }), "env");
  t.is(fieldOf(t, { ...base, env: { A: 1 } }), "env.A");
  t.is(fieldOf(t, { ...base, env: { "A=B": "1" } }), "env.A=B");
});

test("cwd and mount destinations must be absolute container paths", (t) => {
  t.is(fieldOf(t, { ...base, cwd: "tmp" }), "cwd");
  t.is(fieldOf(t, { ...base, cwd: "/a/../b" }), "cwd");
  const mount = (m: unknown) => ({ ...base, mounts: [{ source: dir, destination: "/ok" }, m] });
  t.is(fieldOf(t, mount({ source: dir, destination: "data" })), "mounts[1].destination");
  t.is(fieldOf(t, mount({ source: dir, destination: "/" })), "mounts[1].destination");
  t.is(fieldOf(t, mount({ source: "rel", destination: "/d" })), "mounts[1].source");
  t.is(fieldOf(t, mount({ source: join(dir, "missing"), destination: "/d" })), "mounts[1].source");
  t.is(fieldOf(t, mount({ source: dir, destination: "/d", readOnly: "yes" })), "mounts[1].readOnly");
  t.is(fieldOf(t, mount("x")), "mounts[1]");
  t.is(fieldOf(t, { ...base, mounts: {} }), "mounts");
});

test("user ids must be non-negative integers", (t) => {
  t.is(fieldOf(t, { ...base, user: { uid: -1, gid: 0 } }), "user.uid");
  t.is(fieldOf(t, { ...base, user: { uid: 0 } }), "user.gid");
  t.is(fieldOf(t, { ...base, user: { uid: 1.5, gid: 0 } }), "user.uid");
});

test("resources must be positive", (t) => {
  t.is(fieldOf(t, { ...base, resources: { memoryBytes: -1 } }), "resources.memoryBytes");
  t.is(fieldOf(t, { ...base, resources: { memoryBytes: 0 } }), "resources.memoryBytes");
  t.is(fieldOf(t, { ...base, resources: { memoryBytes: 1.5 } }), "resources.memoryBytes");
  t.is(fieldOf(t, { ...base, resources: { memoryBytes: "1G" } }), "resources.memoryBytes");
  t.is(fieldOf(t, { ...base, resources: { cpus: 0 } }), "resources.cpus");
  t.is(fieldOf(t, { ...base, resources: { pids: 0 } }), "resources.pids");
});

test("runtime is runc or crun; readonlyRootfs is a boolean", (t) => {
  t.is(fieldOf(t, { ...base, runtime: "kata" }), "runtime");
  t.is(fieldOf(t, { ...base, readonlyRootfs: "no" }), "readonlyRootfs");
});

test("messages name the field and the problem", (t) => {
  const err = t.throws(() => parseOciSpec({ ...base, resources: { memoryBytes: -5 } }));
  t.is(err?.message, "resources.memoryBytes: must be a positive integer");
});
