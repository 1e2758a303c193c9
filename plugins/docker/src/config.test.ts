// spec → Docker's create body.
import test from "ava";
import { containerConfig } from "./config.js";

test("a minimal spec: the image's command and env, no network, json-file logs, no restarts", (t) => {
  t.deepEqual(containerConfig({ image: "x" }, { image: "sha256:abc", labels: { a: "b" } }), {
    Image: "sha256:abc",
    Labels: { a: "b" },
    HostConfig: { NetworkMode: "none", LogConfig: { Type: "json-file", Config: {} }, RestartPolicy: { Name: "no" } },
  });
});

test("every field maps to its Docker counterpart", (t) => {
  const config = containerConfig(
    {
      image: "x",
      args: ["sh", "-c", "true"],
      env: { A: "1", B: "x=y" },
      workdir: "/w",
      mounts: [{ source: "/h", destination: "/c", readOnly: true }, { source: "/h2", destination: "/c2" }],
      resources: { cpus: 1.5, memoryMiB: 100 },
      network: "net1",
    },
    { image: "sha256:abc", labels: {} },
  );
  t.deepEqual(config.Cmd, ["sh", "-c", "true"]);
  t.deepEqual(config.Env, ["A=1", "B=x=y"]);
  t.is(config.WorkingDir, "/w");
  t.is(config.HostConfig.NetworkMode, "net1");
  t.deepEqual(config.HostConfig.Mounts, [
    { Type: "bind", Source: "/h", Target: "/c", ReadOnly: true },
    { Type: "bind", Source: "/h2", Target: "/c2", ReadOnly: false },
  ]);
  t.is(config.HostConfig.NanoCpus, 1_500_000_000);
  t.is(config.HostConfig.Memory, 100 * 1024 * 1024);
});
