// The docker target against a real dockerd: every test runs containers from the busybox
// test image and destroys them; the file ends by checking it left no container behind.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import test, { type ExecutionContext } from "ava";
import { VmctlError } from "@vmctl/core/contract";
import { execToEnd } from "@vmctl/core/target-kit";
import type { DockerController } from "./controller.js";
import { CONTAINER_KIND, OWNER_LABEL, SERVICE_LABEL, TARGET_LABEL } from "./naming.js";
import type { DockerSpec } from "./spec.js";
import { client, saveArchive, scratch, type TestContext } from "./testing/context.js";
import { untilStdout } from "@vmctl/plugin-conformance";
import { collectLogs, sh } from "./testing/helpers.js";

const s = await scratch();
const docker = client(s.socket);
const factory = s.factory();
let seq = 0;

// Every test destroyed what it made (t.teardown): nothing of this file may be left.
test.after.always("no container of this file is left on the daemon", async (t) => {
  const left = await s.leftovers();
  await factory.close();
  await s.cleanup();
  t.deepEqual(left, []);
});

/** A new service on the shared factory, destroyed when the test ends whatever happens. */
async function service(t: ExecutionContext, spec: Partial<DockerSpec>): Promise<{ c: DockerController; ctx: TestContext; spec: DockerSpec }> {
  const id = `t${++seq}`;
  const ctx = s.context(id);
  const valid = factory.validate({ image: s.image, ...spec });
  const c = await factory.create(id, valid, ctx);
  t.teardown(() => c.destroy());
  return { c, ctx, spec: valid };
}

test("lifecycle: create makes nothing; prepare creates the labelled container, recorded first; start; wait gives the exit code", async (t) => {
  const { c, ctx } = await service(t, { args: sh("echo out; echo err >&2; exit 7") });
  t.is((await c.state()).phase, "created");
  t.deepEqual(ctx.resources.list(), [], "create makes nothing");
  t.false((await s.leftovers()).includes(c.containerName));

  await c.prepare();
  await c.prepare(); // idempotent
  t.is((await c.state()).phase, "created");
  const [entry, ...more] = ctx.resources.list();
  t.deepEqual(more, []);
  t.is(entry?.kind, CONTAINER_KIND);
  t.is(entry?.key, c.containerName);
  t.deepEqual(entry?.data, { socket: s.socket, name: c.containerName, id: c.containerId });
  // The first intend, before Docker was asked, had no id yet: recorded before it was made.
  t.deepEqual(ctx.resources.history()[0]?.data, { socket: s.socket, name: c.containerName });
  const info = await docker.getContainer(c.containerName).inspect();
  t.is(info.Config.Labels[OWNER_LABEL], s.owner);
  t.is(info.Config.Labels[SERVICE_LABEL], c.id);
  t.is(info.Config.Labels[TARGET_LABEL], "docker");
  t.is(info.HostConfig.NetworkMode, "none");
  t.true(c.containerName.startsWith(`vmctl-${c.id}-`));

  await c.start();
  await c.start(); // idempotent
  const exit = await c.wait();
  t.is(exit.code, 7);
  t.is(exit.reason, "exited");
  t.true(exit.at instanceof Date && Math.abs(exit.at.getTime() - Date.now()) < 60_000);
  const state = await c.state();
  t.is(state.phase, "exited");
  t.is(state.instance, c.containerId);
  await c.start(); // an exited service is not started again
  t.is((await c.wait()).code, 7);
  const logs = await collectLogs(c);
  t.is(logs.stdout, "out\n");
  t.is(logs.stderr, "err\n");
});

test("logs are demultiplexed in order, with Docker's timestamps, and follow streams until the exit", async (t) => {
  const { c } = await service(t, { args: sh("echo a; sleep 0.1; echo b >&2; sleep 0.1; echo c; sleep 0.1; echo d >&2") });
  const before = new Date();
  await c.start();
  const followed = await collectLogs(c, true);
  t.is((await c.state()).phase, "exited", "follow ends once the container has exited");
  t.deepEqual(
    followed.chunks.map((ch) => [ch.stream, Buffer.from(ch.data).toString()]),
    [["stdout", "a\n"], ["stderr", "b\n"], ["stdout", "c\n"], ["stderr", "d\n"]],
  );
  const times = followed.chunks.map((ch) => ch.time.getTime());
  t.true(times.every((time, i) => time >= before.getTime() - 1000 && (i === 0 || time >= times[i - 1]!)), "times are when each line was written");
  t.true(times.at(-1)! - times[0]! >= 250, "the lines were 100 ms apart");
  // After the exit, logs still work, until destroy.
  t.is((await collectLogs(c)).stdout, "a\nc\n");
  t.is((await collectLogs(c, true)).stderr, "b\nd\n");
  await c.destroy();
  t.deepEqual((await collectLogs(c)).chunks, []);
});

test("a large burst of output arrives whole and in order", async (t) => {
  const { c } = await service(t, { args: sh("i=0; while [ $i -lt 3000 ]; do echo line-$i; i=$((i+1)); done") });
  await c.start();
  await c.wait();
  const lines = (await collectLogs(c)).stdout.trim().split("\n");
  t.is(lines.length, 3000);
  t.is(lines[0], "line-0");
  t.is(lines[2999], "line-2999");
});

test("running: state has pid and container id; stop is graceful: a TERM trap exits 0 with reason stopped", async (t) => {
  const { c } = await service(t, { args: sh('trap "echo got-term; exit 0" TERM; echo ready; while true; do sleep 0.05; done') });
  await c.start();
  await untilStdout(c, "ready");
  const state = await c.state();
  t.is(state.phase, "running");
  t.true(typeof state.pid === "number" && state.pid > 0);
  t.is(state.instance, c.containerId);
  t.deepEqual(state.addresses, [], "network none: no addresses");
  const started = Date.now();
  await c.stop({ timeoutMs: 20_000 });
  t.true(Date.now() - started < 5_000, "it did not wait for the timeout");
  const exit = await c.wait();
  t.deepEqual({ code: exit.code, reason: exit.reason, signal: exit.signal }, { code: 0, reason: "stopped", signal: undefined });
  t.true((await collectLogs(c)).stdout.includes("got-term"));
  await c.stop(); // idempotent
});

test("stop forces: a workload ignoring TERM is killed once timeoutMs has passed, reported as SIGKILL", async (t) => {
  const { c } = await service(t, { args: sh('trap "" TERM; echo ready; while true; do sleep 0.05; done') });
  await c.start();
  await untilStdout(c, "ready");
  const started = Date.now();
  await c.stop({ timeoutMs: 400 });
  const took = Date.now() - started;
  // Not before timeoutMs; after it, within the kit's margin (the host may be loaded).
  t.true(took >= 400 && took < 5_400, `stop took ${took} ms`);
  const state = await c.state();
  t.is(state.phase, "exited");
  t.deepEqual({ code: state.exit?.code, signal: state.exit?.signal, reason: state.exit?.reason }, { code: null, signal: "SIGKILL", reason: "stopped" });
});

test("stop before start ends the service without running it; start then does nothing", async (t) => {
  const { c } = await service(t, { args: sh("echo should-not-run") });
  await c.prepare();
  await c.stop({ timeoutMs: 100 });
  const exit = await c.wait();
  t.deepEqual({ code: exit.code, reason: exit.reason }, { code: null, reason: "stopped" });
  await c.start();
  t.is((await docker.getContainer(c.containerName).inspect()).State.Status, "created");
  t.deepEqual((await collectLogs(c, true)).chunks, [], "follow of a never-started service ends");
});

test("a command that cannot be run: start rejects FAILED_PRECONDITION with Docker's reason; the exit reads failed", async (t) => {
  const { c, ctx } = await service(t, { args: ["/no/such/binary"] });
  const err = await t.throwsAsync(c.start(), { instanceOf: VmctlError });
  t.is(err?.code, "FAILED_PRECONDITION");
  t.regex(err?.message ?? "", /no such file|not found/i);
  const exit = await c.wait();
  t.is(exit.reason, "failed");
  t.is(exit.code, null);
  await c.destroy();
  t.deepEqual(ctx.resources.list(), []);
});

test("env and workdir are applied; the image's PATH is kept", async (t) => {
  const { c } = await service(t, { args: sh('echo "$GREETING"; pwd; echo "$PATH"'), env: { GREETING: "hello world" }, workdir: "/mnt" });
  await c.start();
  t.is((await c.wait()).code, 0);
  const [greeting, cwd, path] = (await collectLogs(c)).stdout.split("\n");
  t.is(greeting, "hello world");
  t.is(cwd, "/mnt");
  t.regex(path ?? "", /\/bin/);
});

test("mounts: a read-only bind mount is readable and not writable; a read-write one is writable", async (t) => {
  const ro = join(s.dir, "ro-data");
  const rw = join(s.dir, "rw-data");
  mkdirSync(ro, { recursive: true });
  mkdirSync(rw, { recursive: true });
  writeFileSync(join(ro, "greeting.txt"), "from the host\n");
  const { c } = await service(t, {
    args: sh("cat /ro/greeting.txt; touch /ro/x 2>/dev/null && echo ro-writable; echo written > /rw/out.txt && echo rw-ok"),
    mounts: [
      { source: ro, destination: "/ro", readOnly: true },
      { source: rw, destination: "/rw" },
    ],
  });
  await c.start();
  t.is((await c.wait()).code, 0);
  t.is((await collectLogs(c)).stdout, "from the host\nrw-ok\n");
});

test("resources become the container's cgroup limits", async (t) => {
  const { c } = await service(t, { args: sh("echo ready; exec sleep 1000"), resources: { memoryMiB: 64, cpus: 0.5 } });
  await c.prepare();
  const info = await docker.getContainer(c.containerName).inspect();
  t.is(info.HostConfig.Memory, 64 * 1024 * 1024);
  t.is(info.HostConfig.NanoCpus, 500_000_000);
  await c.start();
  await untilStdout(c, "ready");
  await c.stop({ timeoutMs: 100 });
});

test("exec runs a further command with the service's env and workdir; refused once exited", async (t) => {
  const { c } = await service(t, { args: sh("echo ready; exec sleep 1000"), env: { FOO: "bar" }, workdir: "/tmp" });
  await c.start();
  await untilStdout(c, "ready");
  const r = await execToEnd(await c.exec({ args: sh('echo "$FOO"; pwd; echo oops >&2; exit 4') }));
  t.is(r.code, 4);
  t.is(Buffer.from(r.stdout).toString(), "bar\n/tmp\n");
  t.is(Buffer.from(r.stderr).toString(), "oops\n");
  t.is((await c.state()).phase, "running");
  await c.stop({ timeoutMs: 100 });
  await t.throwsAsync(c.exec({ args: ["true"] }), { instanceOf: VmctlError, code: "FAILED_PRECONDITION", message: /exited/ });
});

test("pause freezes and resume thaws; stop of a paused service works", async (t) => {
  const { c } = await service(t, { args: sh("while true; do echo tick; sleep 0.05; done") });
  await c.start();
  await untilStdout(c, "tick");
  await c.pause();
  await c.pause(); // idempotent
  t.is((await c.state()).phase, "paused");
  const frozen = (await collectLogs(c)).stdout.length;
  await new Promise((r) => setTimeout(r, 300));
  t.is((await collectLogs(c)).stdout.length, frozen);
  await c.resume();
  t.is((await c.state()).phase, "running");
  await c.pause();
  await c.stop({ timeoutMs: 200 });
  t.is((await c.state()).exit?.reason, "stopped");
});

test("network: a service on a Docker network reports its address", async (t) => {
  const name = `vmctl-test-net-${process.pid}`;
  const network = await docker.createNetwork({ Name: name, Driver: "bridge", CheckDuplicate: true, Labels: { [OWNER_LABEL]: s.owner } });
  t.teardown(() => network.remove());
  const { c } = await service(t, { args: sh("echo ready; exec sleep 1000"), network: name });
  await c.start();
  await untilStdout(c, "ready");
  const state = await c.state();
  t.is(state.addresses?.length, 1);
  t.regex(state.addresses?.[0] ?? "", /^\d+\.\d+\.\d+\.\d+$/);
  await c.destroy();
});

test("imageArchive: prepare loads the archive through the API and records the tag it produced", async (t) => {
  const tag = `vmctl-test/archive:${process.pid}`;
  const archive = await saveArchive(s.socket, tag, join(s.dir, "busybox.tar"));
  t.teardown(() => docker.getImage(tag).remove().catch(() => undefined));
  await t.throwsAsync(docker.getImage(tag).inspect(), undefined, "the tag is only in the archive");
  const { c } = await service(t, { image: undefined, imageArchive: archive, args: sh("echo from-archive") } as Partial<DockerSpec>);
  await c.start();
  t.is((await c.wait()).code, 0);
  t.is((await collectLogs(c)).stdout, "from-archive\n");
  const record = c.record() as { image: { source: string; loadedTags: string[]; id: string } };
  t.is(record.image.source, archive);
  t.deepEqual(record.image.loadedTags, [tag]);
  const loaded = await docker.getImage(tag).inspect();
  t.is(loaded.Id, record.image.id);
  await c.destroy();
  t.truthy(await docker.getImage(tag).inspect(), "destroy leaves the loaded image (documented)");
});

test("destroy removes the container (running or not), never the image, releases the ledger, and is idempotent", async (t) => {
  const { c, ctx } = await service(t, { args: sh("echo ready; exec sleep 1000") });
  await c.start();
  await untilStdout(c, "ready");
  const name = c.containerName;
  await c.destroy();
  await c.destroy();
  await t.throwsAsync(docker.getContainer(name).inspect(), undefined, "the container is gone");
  t.deepEqual(ctx.resources.list(), []);
  t.truthy(await docker.getImage(s.image).inspect(), "the user's image stays");
  t.is((await c.state()).phase, "exited");
  await t.throwsAsync(c.start(), { instanceOf: VmctlError, message: /destroyed/ });
});

test("concurrent prepare and start make one container", async (t) => {
  const { c, ctx } = await service(t, { args: sh("echo once") });
  await Promise.all([c.prepare(), c.prepare(), c.start(), c.start()]);
  await c.wait();
  t.is((await collectLogs(c)).stdout, "once\n");
  const mine = (await s.leftovers()).filter((n) => n === c.containerName);
  t.is(mine.length, 1);
  t.is(ctx.resources.list().length, 1);
});
