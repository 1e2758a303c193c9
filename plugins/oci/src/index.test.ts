import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { ValidationError } from "@vmctl/core/contract";
import { OciFactory } from "./factory.js";
import registration, { initOci } from "./index.js";
import { MemoryLogger, requireRunc } from "./testing/context.js";

const dir = mkdtempSync(join(tmpdir(), "vmctl-oci-index-"));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

test("the registration is plain data for one target", (t) => {
  t.is(registration.name, "vmctl-plugin-oci");
  t.deepEqual(registration.targets.map((r) => r.target), ["oci"]);
});

test("init finds runc and claims honest capabilities", async (t) => {
  requireRunc();
  const factory = await registration.targets[0]!.init({ stateDir: join(dir, "a"), options: {}, log: new MemoryLogger() });
  t.is(factory?.target, "oci");
  t.deepEqual(factory?.capabilities, { exec: true, pause: true, network: false, volumes: true, logsFollow: true, copy: true });
});

test("init is skipped (undefined, with a reason logged) when no runtime binary is found", (t) => {
  const log = new MemoryLogger();
  const empty = join(dir, "empty-bin");
  mkdirSync(empty, { recursive: true });
  t.is(initOci({ stateDir: join(dir, "b"), options: {}, log }, [empty]), undefined);
  t.true(log.lines.some((l) => l.level === "info" && /skipped/.test(l.message)));
});

test("a spec naming a runtime that is not installed is refused at validate", (t) => {
  const bin = join(dir, "runc-only");
  mkdirSync(bin, { recursive: true });
  symlinkSync(requireRunc(), join(bin, "runc"));
  const factory = initOci({ stateDir: join(dir, "c"), options: {}, log: new MemoryLogger() }, [bin]);
  const err = t.throws(() => factory!.validate({ rootfs: dir, args: ["sh"], runtime: "crun" }), { instanceOf: ValidationError });
  t.is(err?.field, "runtime");
  t.notThrows(() => factory!.validate({ rootfs: dir, args: ["sh"] }));
});

test("specFromRun: the image is the rootfs, the command the args, explicit spec fields win", (t) => {
  const factory = new OciFactory(new Map(), new MemoryLogger());
  t.deepEqual(factory.specFromRun({ image: "/srv/rootfs", command: ["sh", "-c", "true"], env: { A: "1" }, mounts: [], copyOut: [], spec: {} }), {
    rootfs: "/srv/rootfs",
    args: ["sh", "-c", "true"],
    env: { A: "1" },
  });
  t.deepEqual(
    factory.specFromRun({ image: "/srv/rootfs", command: ["true"], env: { B: "2" }, mounts: [], copyOut: [], spec: { args: ["false"], env: { A: "1" }, cwd: "/tmp" } }),
    { rootfs: "/srv/rootfs", args: ["false"], env: { A: "1", B: "2" }, cwd: "/tmp" },
  );
  // -v mounts follow the spec's own.
  const mount = { source: "/srv/src", destination: "/src", readOnly: true };
  t.deepEqual(factory.specFromRun({ image: "/r", command: [], env: {}, mounts: [mount], copyOut: ["/src/out"], spec: {} }), { rootfs: "/r", mounts: [mount] });
  const own = { source: "/srv/data", destination: "/data" };
  t.deepEqual(factory.specFromRun({ image: "/r", command: [], env: {}, mounts: [mount], copyOut: [], spec: { mounts: [own] } }), { rootfs: "/r", mounts: [own, mount] });
});
