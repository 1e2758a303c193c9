// The docker target through vmctld and the CLI, against a real dockerd (the host's, or
// the private one tests/support/dockerd.ts starts); the socket comes from the config file.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { client, ensureTestImage } from "../../plugins/docker/src/testing/context.js";
import { ensureDocker, type DockerDaemon } from "../support/dockerd.js";
import { Daemon, sandbox, teardown, vmctl, type Sandbox } from "./helpers/sandbox.js";

let docker: DockerDaemon;
let image: string;
let sb: Sandbox;
let daemon: Daemon;

function configFile(dir: string, name: string, socket: string): string {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify({ targets: { docker: { socket } } }));
  return path;
}

test.before(async () => {
  docker = await ensureDocker();
  image = await ensureTestImage(docker.socket);
  sb = sandbox("vmctl-e2e-docker-");
  daemon = await Daemon.start(sb, { extraArgs: ["--config", configFile(sb.dir, "config.json", docker.socket)] });
});
test.after.always(async () => {
  await teardown(sb, [daemon]);
  docker?.release();
});

/** Containers on the daemon that vmctl made (they carry a service label). */
async function vmctlContainers(): Promise<string[]> {
  const list = await client(docker.socket).listContainers({ all: true, filters: { label: ["vmctl.io/service"] } });
  return list.filter((c) => c.Labels["vmctl.io/owner"] !== undefined).map((c) => c.Names[0] ?? c.Id);
}

test.serial("vmctl targets lists docker with its capabilities", async (t) => {
  const result = await vmctl(sb, ["targets", "--json"]);
  t.is(result.code, 0, result.stderr);
  const entry = (JSON.parse(result.stdout) as { name: string; status: string; capabilities: Record<string, boolean> }[]).find((x) => x.name === "docker");
  t.is(entry?.status, "ready", result.stdout);
  t.true(entry?.capabilities.exec);
  t.true(entry?.capabilities.logsFollow);
});

test.serial("vmctl run --rm --target docker IMAGE -- CMD prints stdout and stderr apart, exits with the code, removes the container", async (t) => {
  const before = await vmctlContainers();
  const result = await vmctl(sb, ["run", "--rm", "--target", "docker", "-e", "WHO=docker", image, "--", "sh", "-c", 'echo "hi $WHO"; echo oops >&2; exit 4']);
  t.is(result.code, 4, result.stderr);
  t.is(result.stdout, "hi docker\n");
  t.is(result.stderr, "oops\n");
  t.deepEqual(JSON.parse((await vmctl(sb, ["ps", "-a", "--json"])).stdout), []);
  t.deepEqual(await vmctlContainers(), before);
});

test.serial("an image the daemon lacks is refused at create in one line naming it, and nothing is made", async (t) => {
  const before = await vmctlContainers();
  const result = await vmctl(sb, ["run", "--rm", "--target", "docker", "vmctl-test/no-such-image:1", "--", "true"]);
  t.not(result.code, 0);
  t.log(result.stderr.trim());
  t.is(result.stdout, "");
  t.is(result.stderr.trim().split("\n").length, 1, result.stderr);
  t.regex(result.stderr, /no-such-image/);
  t.deepEqual(JSON.parse((await vmctl(sb, ["ps", "-a", "--json"])).stdout), []);
  t.deepEqual(await vmctlContainers(), before);
});

test.serial("an unreachable Docker socket is a one-line error at create naming the socket, and nothing is recorded", async (t) => {
  const other = sandbox("vmctl-e2e-docker-down-");
  const missing = join(other.dir, "no-docker.sock");
  const down = await Daemon.start(other, { extraArgs: ["--config", configFile(other.dir, "config.json", missing)] });
  try {
    const result = await vmctl(other, ["run", "--rm", "--target", "docker", image, "--", "true"]);
    t.not(result.code, 0);
    t.log(result.stderr.trim());
  t.log(result.stderr.trim());
    t.is(result.stderr.trim().split("\n").length, 1, result.stderr);
    t.true(result.stderr.includes(missing), result.stderr);
    t.deepEqual(JSON.parse((await vmctl(other, ["ps", "-a", "--json"])).stdout), []);
  } finally {
    await teardown(other, [down]);
  }
});
