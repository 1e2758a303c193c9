import test from "ava";
import { buildRuntimeConfig, CFS_PERIOD_US, DEFAULT_CAPABILITIES, DEFAULT_PATH } from "./bundle.js";
import type { OciSpec } from "./spec.js";

const options = { hostname: "svc", cgroupsPath: "vmctl-svc", annotations: { "org.vmctl.owner": "me" } };
const minimal: OciSpec = { rootfs: "/srv/rootfs", args: ["sh", "-c", "echo hi"] };

test("defaults: root, cwd, env PATH, read-only rootfs, no terminal", (t) => {
  const c = buildRuntimeConfig(minimal, options);
  t.is(c.ociVersion, "1.0.2");
  t.deepEqual(c.root, { path: "/srv/rootfs", readonly: true });
  t.false(c.process.terminal);
  t.deepEqual(c.process.args, ["sh", "-c", "echo hi"]);
  t.is(c.process.cwd, "/");
  t.deepEqual(c.process.user, { uid: 0, gid: 0 });
  t.deepEqual(c.process.env, [`PATH=${DEFAULT_PATH}`]);
  t.true(c.process.noNewPrivileges);
  t.is(c.hostname, "svc");
  t.deepEqual(c.annotations, { "org.vmctl.owner": "me" });
  t.is(c.linux.cgroupsPath, "vmctl-svc");
});

test("namespaces: pid, mount, ipc, uts and a new (empty) network namespace; never the host's", (t) => {
  const c = buildRuntimeConfig(minimal, options);
  const types = c.linux.namespaces.map((n) => n.type).sort();
  t.deepEqual(types, ["ipc", "mount", "network", "pid", "uts"]);
  t.true(c.linux.namespaces.every((n) => !("path" in n)), "no namespace joins an existing one");
});

test("standard mounts are present, and /tmp is a tmpfs when the rootfs is read-only", (t) => {
  const c = buildRuntimeConfig(minimal, options);
  const byDest = new Map(c.mounts.map((m) => [m.destination, m]));
  for (const dest of ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys"]) t.true(byDest.has(dest), dest);
  t.is(byDest.get("/proc")?.type, "proc");
  t.is(byDest.get("/dev/pts")?.type, "devpts");
  t.true(byDest.get("/sys")?.options?.includes("ro"));
  t.is(byDest.get("/tmp")?.type, "tmpfs");

  const writable = buildRuntimeConfig({ ...minimal, readonlyRootfs: false }, options);
  t.false(writable.root.readonly);
  t.false(writable.mounts.some((m) => m.destination === "/tmp"));
});

test("security defaults: capability set, rlimits, masked and read-only paths, devices denied", (t) => {
  const c = buildRuntimeConfig(minimal, options);
  t.deepEqual(c.process.capabilities.bounding, [...DEFAULT_CAPABILITIES]);
  t.deepEqual(c.process.capabilities.effective, [...DEFAULT_CAPABILITIES]);
  t.false(c.process.capabilities.bounding.includes("CAP_SYS_ADMIN"));
  t.deepEqual(c.process.rlimits, [{ type: "RLIMIT_NOFILE", hard: 1024, soft: 1024 }]);
  t.true(c.linux.maskedPaths.includes("/proc/kcore"));
  t.true(c.linux.readonlyPaths.includes("/proc/sys"));
  t.deepEqual(c.linux.resources.devices, [{ allow: false, access: "rwm" }]);
});

test("env, cwd and user come from the spec; a given PATH wins", (t) => {
  const c = buildRuntimeConfig(
    { ...minimal, env: { FOO: "bar baz", PATH: "/bin" }, cwd: "/work", user: { uid: 1000, gid: 1001 } },
    options,
  );
  t.deepEqual(c.process.env, ["PATH=/bin", "FOO=bar baz"]);
  t.is(c.process.cwd, "/work");
  t.deepEqual(c.process.user, { uid: 1000, gid: 1001 });
});

test("mounts become rbind mounts, read-only when asked, after the standard ones", (t) => {
  const c = buildRuntimeConfig(
    {
      ...minimal,
      mounts: [
        { source: "/host/data", destination: "/data", readOnly: true },
        { source: "/host/scratch", destination: "/tmp" },
      ],
    },
    options,
  );
  const data = c.mounts.find((m) => m.destination === "/data");
  t.deepEqual(data, { destination: "/data", type: "bind", source: "/host/data", options: ["rbind", "rprivate", "ro"] });
  const tmps = c.mounts.filter((m) => m.destination === "/tmp");
  t.is(tmps.length, 1, "a user mount on /tmp replaces the tmpfs");
  t.is(tmps[0]?.type, "bind");
  t.is(c.mounts.findIndex((m) => m.destination === "/data"), c.mounts.length - 2);
});

test("resources become cgroup limits", (t) => {
  const c = buildRuntimeConfig({ ...minimal, resources: { memoryBytes: 64 << 20, cpus: 1.5, pids: 20 } }, options);
  t.deepEqual(c.linux.resources.memory, { limit: 64 << 20 });
  t.deepEqual(c.linux.resources.cpu, { quota: 150_000, period: CFS_PERIOD_US });
  t.deepEqual(c.linux.resources.pids, { limit: 20 });
  const none = buildRuntimeConfig(minimal, options);
  t.is(none.linux.resources.memory, undefined);
  t.is(none.linux.resources.cpu, undefined);
  t.is(none.linux.resources.pids, undefined);
});

test("the output is plain JSON and the spec is not aliased", (t) => {
  const spec: OciSpec = { ...minimal, args: ["a"] };
  const c = buildRuntimeConfig(spec, options);
  c.process.args.push("b");
  t.deepEqual(spec.args, ["a"]);
  t.deepEqual(JSON.parse(JSON.stringify(c)), c);
});
