// The plugin conformance kit against the docker target: a real dockerd (the host's, or
// the private one tests/support/dockerd.ts starts), the busybox test image, and a Docker
// network of its own so the network capability is exercised too.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { builtPluginPath, conformanceTests } from "@vmctl/plugin-conformance";
import { OWNER_LABEL } from "./naming.js";
import { client, scratch } from "./testing/context.js";

// Built and current, or this file fails here saying what to build (never skipped).
const pluginPath = builtPluginPath(new URL("..", import.meta.url));

const s = await scratch("vmctl-docker-conformance-");
const docker = client(s.socket);
const network = `vmctl-conformance-${process.pid}`;
await docker.createNetwork({ Name: network, Driver: "bridge", CheckDuplicate: true, Labels: { [OWNER_LABEL]: s.owner } });
const dir = mkdtempSync(join(tmpdir(), "vmctl-docker-conformance-"));
const image = s.image;
const sh = (script: string, extra: Record<string, unknown> = {}) => ({ image, args: ["sh", "-c", script], ...extra });

conformanceTests(
  test,
  {
    // The package directory (its built dist, loaded as vmctld loads it): the restart checks
    // then run the first orchestrator in a fresh process, adopt/interrupted-start included.
    pluginPath,
    options: { targetOptions: { socket: s.socket } },
    fixtures: {
      specs: {
        exitsWith: (code) => ({ spec: sh(`echo "conformance exit ${code}"; exit ${code}`), line: `conformance exit ${code}` }),
        runsUntilStopped: () => ({ spec: sh("while :; do echo tick; sleep 0.05; done", { network }), line: "tick" }),
        ignoresPoliteStop: () => ({ spec: sh("trap '' TERM INT; echo ignoring; while :; do sleep 0.05; done"), line: "ignoring" }),
        readsVolume: (hostDir, file) => ({ spec: { image, args: ["cat", `/mnt/${file}`], mounts: [{ source: hostDir, destination: "/mnt", readOnly: true }] } }),
        invalid: [
          { spec: { args: ["true"] }, field: "image" },
          { spec: { image, imageArchive: "/x.tar" }, field: "imageArchive" },
          { spec: { imageArchive: "relative.tar" }, field: "imageArchive" },
          { spec: { image, args: [] }, field: "args" },
          { spec: { image, args: ["sh", 1] }, field: "args[1]" },
          { spec: { image, env: { "A=B": "x" } }, field: "env.A=B" },
          { spec: { image, resources: { memoryMiB: 1 } }, field: "resources.memoryMiB" },
          { spec: { image, mounts: [{ source: dir, destination: "/" }] }, field: "mounts[0].destination" },
          { spec: { image, network: "host" }, field: "network" },
          { spec: { image, bogus: true }, field: "bogus" },
        ],
      },
    },
  },
  { title: "docker conformance: " },
);

test.after.always(async () => {
  const left = await s.leftovers();
  await docker.getNetwork(network).remove().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
  await s.cleanup();
  if (left.length > 0) throw new Error(`the conformance run left containers on the daemon: ${left.join(", ")}`);
});
