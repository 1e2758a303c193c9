import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { findBinary } from "@vmctl/core/target-kit";
import { LxcFactory } from "./factory.js";
import registration, { initLxc } from "./index.js";
import { LxcTools } from "./tools.js";
import { MemoryLogger, requireLxc } from "./testing/context.js";

const dir = mkdtempSync(join(tmpdir(), "vmctl-lxc-index-"));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

test("the registration is plain data for one target", (t) => {
  t.is(registration.name, "vmctl-plugin-lxc");
  t.deepEqual(registration.targets.map((r) => r.target), ["lxc"]);
});

test("init finds LXC, makes a private lxcpath under the state dir and claims honest capabilities", async (t) => {
  requireLxc();
  const stateDir = join(dir, "a");
  const factory = (await registration.targets[0]!.init({ stateDir, options: {}, log: new MemoryLogger() })) as LxcFactory | undefined;
  t.is(factory?.target, "lxc");
  t.is(factory?.lxcpath, join(stateDir, "containers"));
  t.deepEqual(readdirSync(stateDir), ["containers"]);
  t.deepEqual(factory?.capabilities, { exec: true, pause: true, network: true, volumes: true, logsFollow: true, copy: true });
});

test("init is skipped (undefined, with a reason logged) when the lxc tools are not found", (t) => {
  const log = new MemoryLogger();
  const empty = join(dir, "empty-bin");
  mkdirSync(empty, { recursive: true });
  t.is(initLxc({ stateDir: join(dir, "b"), options: {}, log }, [empty]), undefined);
  t.true(log.lines.some((l) => l.level === "info" && /lxc target skipped: lxc-execute/.test(l.message)));
});

test("without lxc-attach or lxc-freeze, exec and pause are not claimed", (t) => {
  requireLxc();
  const bin = join(dir, "core-only");
  mkdirSync(bin, { recursive: true });
  for (const name of ["lxc-execute", "lxc-stop", "lxc-info"]) symlinkSync(findBinary(name)!, join(bin, name));
  const factory = initLxc({ stateDir: join(dir, "c"), options: {}, log: new MemoryLogger() }, [bin]);
  t.deepEqual(factory?.capabilities, { exec: false, pause: false, network: true, volumes: true, logsFollow: true, copy: true });
});

test("the old bridge / subnet options are refused at init, naming the option and where networks went", (t) => {
  for (const options of [{ bridge: "vmctl-lxc0" }, { subnet: "10.213.0.0/24" }]) {
    const field = `targets.lxc.${Object.keys(options)[0]}`;
    const err = t.throws(() => initLxc({ stateDir: join(dir, "d"), options, log: new MemoryLogger() }), undefined, JSON.stringify(options));
    t.is((err as { code?: string }).code, "INVALID_ARGUMENT");
    t.is((err as { details?: { field?: string } }).details?.field, field);
    t.regex((err as Error).message, /vmctl network create/);
  }
});

test("specFromRun: the image is the rootfs, the command the args, explicit spec fields win", (t) => {
  const factory = new LxcFactory({
    tools: new LxcTools({ execute: "x", stop: "x", info: "x" }, dir),
    templatesDir: dir,
    cgroup: "v1",
    log: new MemoryLogger(),
    legacyAddresses: join(dir, "addresses"),
  });
  t.deepEqual(factory.specFromRun({ image: "/srv/rootfs", command: ["sh", "-c", "true"], env: { A: "1" }, mounts: [], copyOut: [], spec: {} }), {
    rootfs: "/srv/rootfs",
    args: ["sh", "-c", "true"],
    env: { A: "1" },
  });
  t.deepEqual(
    factory.specFromRun({ image: "/srv/rootfs", command: ["true"], env: { B: "2" }, mounts: [], copyOut: [], spec: { args: ["false"], env: { A: "1" }, workdir: "/tmp" } }),
    { rootfs: "/srv/rootfs", args: ["false"], env: { A: "1", B: "2" }, workdir: "/tmp" },
  );
  t.deepEqual(factory.specFromRun({ command: ["true"], env: {}, mounts: [], copyOut: [], spec: { template: "busybox" } }), { args: ["true"], template: "busybox" });
});
