import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { ValidationError } from "@vmctl/core/contract";
import { parseLxcSpec } from "./spec.js";

const dir = mkdtempSync(join(tmpdir(), "vmctl-lxc-spec-"));
const rootfs = join(dir, "rootfs");
mkdirSync(rootfs);
const file = join(dir, "file.txt");
writeFileSync(file, "x");
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

function fieldOf(input: unknown): string | undefined {
  try {
    parseLxcSpec(input);
  } catch (err) {
    if (err instanceof ValidationError) return err.field;
    throw err;
  }
  return undefined;
}

test("a full rootfs spec is accepted and returned with only known fields", (t) => {
  const spec = {
    rootfs,
    args: ["sh", "-c", "echo hi"],
    env: { GREETING: "hello world", _X1: "" },
    workdir: "/srv//app/",
    mounts: [{ source: dir, destination: "/data", readOnly: true }, { source: file, destination: "/etc/f" }],
    resources: { memoryMiB: 64, cpus: 0.5, pids: 50 },
    readonlyRootfs: false,
  };
  t.deepEqual(parseLxcSpec(spec), { ...spec, workdir: "/srv/app/" });
});

test("a template spec is accepted; defaults are not filled in", (t) => {
  t.deepEqual(parseLxcSpec({ template: "busybox", templateArgs: ["--flag"], args: ["true"] }), {
    template: "busybox",
    templateArgs: ["--flag"],
    args: ["true"],
  });
});

test("every bad field is refused by its path", (t) => {
  const cases: [unknown, string][] = [
    [null, ""],
    [[], ""],
    [{ args: ["true"] }, "rootfs"],
    [{ rootfs, template: "busybox", args: ["true"] }, "template"],
    [{ rootfs: "relative", args: ["true"] }, "rootfs"],
    [{ rootfs: join(dir, "missing"), args: ["true"] }, "rootfs"],
    [{ rootfs: file, args: ["true"] }, "rootfs"],
    [{ rootfs: `${rootfs}\nlxc.x = y`, args: ["true"] }, "rootfs"],
    [{ template: "../evil", args: ["true"] }, "template"],
    [{ template: "busybox", templateArgs: "x", args: ["true"] }, "templateArgs"],
    [{ template: "busybox", templateArgs: [1], args: ["true"] }, "templateArgs[0]"],
    [{ rootfs, templateArgs: [], args: ["true"] }, "templateArgs"],
    [{ rootfs }, "args"],
    [{ rootfs, args: [] }, "args"],
    [{ rootfs, args: [""] }, "args[0]"],
    [{ rootfs, args: ["sh", 2] }, "args[1]"],
    [{ rootfs, args: ["true"], env: [] }, "env"],
    [{ rootfs, args: ["true"], env: { "A B": "x" } }, "env.A B"],
    [{ rootfs, args: ["true"], env: { "1A": "x" } }, "env.1A"],
    [{ rootfs, args: ["true"], env: { A: 1 } }, "env.A"],
    [{ rootfs, args: ["true"], env: { A: "line\nlxc.hook.pre-start = /evil" } }, "env.A"],
    [{ rootfs, args: ["true"], workdir: "relative" }, "workdir"],
    [{ rootfs, args: ["true"], workdir: "/a/../b" }, "workdir"],
    [{ rootfs, args: ["true"], network: "host" }, "network"],
    [{ rootfs, args: ["true"], network: 1 }, "network"],
    // Networks are the service's own now: the old values name the field and say where it went.
    [{ rootfs, args: ["true"], network: "bridge" }, "network"],
    [{ rootfs, args: ["true"], network: "none" }, "network"],
    [{ rootfs, args: ["true"], mounts: {} }, "mounts"],
    [{ rootfs, args: ["true"], mounts: [{ source: dir }] }, "mounts[0].destination"],
    [{ rootfs, args: ["true"], mounts: [{ source: "rel", destination: "/x" }] }, "mounts[0].source"],
    [{ rootfs, args: ["true"], mounts: [{ source: join(dir, "nope"), destination: "/x" }] }, "mounts[0].source"],
    [{ rootfs, args: ["true"], mounts: [{ source: dir, destination: "/" }] }, "mounts[0].destination"],
    [{ rootfs, args: ["true"], mounts: [{ source: dir, destination: "/a b" }] }, "mounts[0].destination"],
    [{ rootfs, args: ["true"], mounts: [{ source: dir, destination: "/x", readOnly: "yes" }] }, "mounts[0].readOnly"],
    [{ rootfs, args: ["true"], mounts: [{ source: dir, destination: "/x", bind: true }] }, "mounts[0].bind"],
    [{ rootfs, args: ["true"], resources: { memoryMiB: 0 } }, "resources.memoryMiB"],
    [{ rootfs, args: ["true"], resources: { memoryMiB: 1.5 } }, "resources.memoryMiB"],
    [{ rootfs, args: ["true"], resources: { cpus: -1 } }, "resources.cpus"],
    [{ rootfs, args: ["true"], resources: { pids: "10" } }, "resources.pids"],
    [{ rootfs, args: ["true"], resources: { memoryBytes: 10 } }, "resources.memoryBytes"],
    [{ rootfs, args: ["true"], readonlyRootfs: 1 }, "readonlyRootfs"],
    [{ rootfs, args: ["true"], cwd: "/" }, "cwd"],
  ];
  for (const [input, field] of cases) t.is(fieldOf(input), field, JSON.stringify(input));
});

test("errors are ValidationErrors with INVALID_ARGUMENT and the field in details", (t) => {
  const err = t.throws(() => parseLxcSpec({ rootfs, args: ["x"], bogus: 1 }), { instanceOf: ValidationError });
  t.is(err?.code, "INVALID_ARGUMENT");
  t.is(err?.details.field, "bogus");
  t.regex(err?.message ?? "", /^bogus: unknown field/);
});

test("validation is idempotent and survives JSON", (t) => {
  const once = parseLxcSpec({ rootfs, args: ["true"], env: { A: "1" }, mounts: [{ source: dir, destination: "/m/" }] });
  t.deepEqual(parseLxcSpec(JSON.parse(JSON.stringify(once))), once);
});
