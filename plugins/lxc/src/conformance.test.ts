// The plugin conformance kit against the lxc target (real LXC, a busybox rootfs).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { builtPluginPath, conformanceTests } from "@vmctl/plugin-conformance";
import { busyboxRootfs, requireLxc } from "./testing/context.js";

// Built and current, or this file fails here saying what to build (never skipped).
const pluginPath = builtPluginPath(new URL("..", import.meta.url));

requireLxc();
const dir = mkdtempSync(join(tmpdir(), "vmctl-lxc-conformance-"));
const rootfs = busyboxRootfs(dir);
const sh = (script: string) => ({ rootfs, args: ["sh", "-c", script] });
let copies = 0;

conformanceTests(
  test,
  {
    // The package directory (its built dist, loaded as vmctld loads it): the restart checks
    // then run the first orchestrator in a fresh process, adopt/interrupted-start included.
    pluginPath,
    // network is claimed (LXC makes the veth of the network the orchestrator hands it); the
    // kit gives services no network yet, so its check notes it unexercised: bridge.test.ts
    // proves it through vmctld, in namespaces of its own.
    fixtures: {
      specs: {
        exitsWith: (code) => ({ spec: sh(`echo "conformance exit ${code}"; exit ${code}`), line: `conformance exit ${code}` }),
        runsUntilStopped: () => ({ spec: sh("while :; do echo tick; sleep 0.05; done"), line: "tick" }),
        ignoresPoliteStop: () => ({ spec: sh("trap '' TERM INT; echo ignoring; while :; do sleep 0.05; done"), line: "ignoring" }),
        readsVolume: (hostDir, file) => ({ spec: { rootfs, args: ["cat", `/mnt/${file}`], mounts: [{ source: hostDir, destination: "/mnt", readOnly: true }] } }),
        invalid: [
          { spec: { rootfs: "relative/dir", args: ["true"] }, field: "rootfs" },
          { spec: { args: ["true"] }, field: "rootfs" },
          { spec: { rootfs, template: "busybox", args: ["true"] }, field: "template" },
          { spec: { rootfs, args: [] }, field: "args" },
          { spec: { rootfs, args: ["sh", 1] }, field: "args[1]" },
          { spec: { rootfs, args: ["true"], network: "host" }, field: "network" },
          { spec: { rootfs, args: ["true"], network: "bridge" }, field: "network" },
          { spec: { rootfs, args: ["true"], env: { "A=B": "x" } }, field: "env.A=B" },
          { spec: { rootfs, args: ["true"], resources: { cpus: 0 } }, field: "resources.cpus" },
          { spec: { rootfs, args: ["true"], mounts: [{ source: dir, destination: "/" }] }, field: "mounts[0].destination" },
          { spec: { rootfs, args: ["true"], bogus: true }, field: "bogus" },
        ],
      },
      // The copy check writes its tree under /srv of a writable rootfs of the service's own
      // (the shared one is read-only; /tmp is then a tmpfs, gone after the exit).
      copy: {
        dir: "/srv",
        running: () => ({ spec: { ...sh("while :; do echo tick; sleep 0.05; done"), rootfs: busyboxRootfs(join(dir, `copy-${++copies}`)), readonlyRootfs: false }, line: "tick" }),
      },
    },
  },
  { title: "lxc conformance: " },
);

test.after.always(() => {
  rmSync(dir, { recursive: true, force: true });
});
