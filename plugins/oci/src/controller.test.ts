// The oci target against real runc: every test runs containers from a busybox rootfs.
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { VmctlError } from "@vmctl/core/contract";
import { execToEnd } from "@vmctl/core/target-kit";
import type { OciController } from "./controller.js";
import type { OciSpec } from "./spec.js";
import { runcList, scratch, testContext, type TestContext } from "./testing/context.js";
import { collectLogs, processesMentioning, untilStdout, utf8 as text } from "@vmctl/plugin-conformance";

const s = scratch();
test.after.always(() => s.cleanup());

const factory = s.factory();
let seq = 0;

/** A new service on the shared factory, destroyed when the test ends whatever happens. */
async function service(
  t: import("ava").ExecutionContext,
  spec: Omit<OciSpec, "rootfs"> & { rootfs?: string },
): Promise<{ c: OciController; ctx: TestContext; spec: OciSpec }> {
  const id = `t${++seq}-${process.pid}`;
  const ctx = testContext(s.dir, id);
  const valid = factory.validate({ rootfs: s.rootfs, ...spec });
  const c = await factory.create(id, valid, ctx);
  t.teardown(() => c.destroy());
  return { c, ctx, spec: valid };
}

function sh(script: string): string[] {
  return ["sh", "-c", script];
}

/** A running service to exec in. */
async function running(t: import("ava").ExecutionContext): Promise<OciController> {
  const { c } = await service(t, { args: sh("echo ready; exec sleep 1000") });
  await c.start();
  await untilStdout(c, "ready");
  return c;
}

test("lifecycle: create → prepare → start → running → logs → wait gives the exit code", async (t) => {
  const { c, ctx } = await service(t, { args: sh("echo out; echo err >&2; echo ready; sleep 0.3; exit 7") });
  t.is((await c.state()).phase, "created");
  t.deepEqual(ctx.resources.list(), [], "create makes nothing");

  await c.prepare();
  await c.prepare();
  const config = JSON.parse(readFileSync(join(ctx.serviceDir, "bundle", "config.json"), "utf8"));
  t.deepEqual(config.process.args.slice(0, 2), ["sh", "-c"]);
  t.is((await c.state()).phase, "created");

  await c.start();
  await c.start(); // idempotent
  const kinds = ctx.resources.list().map((r) => r.kind).sort();
  t.deepEqual(kinds, ["dir", "dir", "process", "runc-container"]);

  const exit = await c.wait();
  t.is(exit.code, 7);
  t.is(exit.reason, "exited");
  const state = await c.state();
  t.is(state.phase, "exited");
  t.is(state.instance, c.containerId);
  const logs = await collectLogs(c);
  t.is(logs.stdout, "out\nready\n");
  t.is(logs.stderr, "err\n");
});

test("state is running with the container's pid, and runc carries the owner labels", async (t) => {
  const { c } = await service(t, { args: sh("echo ready; exec sleep 1000") });
  await c.start();
  await untilStdout(c, "ready");
  const state = await c.state();
  t.is(state.phase, "running");
  t.true(typeof state.pid === "number" && existsSync(`/proc/${state.pid}`));
  t.true(runcList(s).includes(c.containerId));
  const rs = await factory.runtimeFor({ rootfs: s.rootfs, args: ["x"] }).state(c.containerId);
  t.is(rs?.annotations["vmctl.io/owner"], "oci-tests");
  await c.stop({ timeoutMs: 100 });
  t.is((await c.state()).phase, "exited");
});

test("logs({ follow }) streams output until the container exits", async (t) => {
  const { c } = await service(t, { args: sh("for i in 1 2 3; do echo line$i; sleep 0.1; done; echo bye >&2") });
  await c.start();
  const logs = await collectLogs(c, true);
  t.is(logs.stdout, "line1\nline2\nline3\n");
  t.is(logs.stderr, "bye\n");
  t.is((await c.state()).phase, "exited");
});

test("stop is graceful: a TERM trap exits 0", async (t) => {
  const { c } = await service(t, { args: sh('trap "echo got-term; exit 0" TERM; echo ready; while true; do sleep 0.05; done') });
  await c.start();
  await untilStdout(c, "ready");
  await c.stop({ timeoutMs: 20_000 });
  const exit = await c.wait();
  t.is(exit.code, 0);
  t.is(exit.reason, "stopped");
  t.true((await collectLogs(c)).stdout.includes("got-term"));
});

test("stop forces: a workload ignoring TERM is killed after the timeout", async (t) => {
  const { c } = await service(t, { args: sh('trap "" TERM; echo ready; while true; do sleep 1; done') });
  await c.start();
  await untilStdout(c, "ready");
  await c.stop({ timeoutMs: 300 });
  const state = await c.state();
  t.is(state.phase, "exited");
  t.deepEqual({ code: state.exit?.code, signal: state.exit?.signal, reason: state.exit?.reason }, {
    code: null,
    signal: "SIGKILL",
    reason: "stopped",
  });
  t.false(runcList(s).includes(c.containerId));
});

test("env, cwd and user are applied", async (t) => {
  const { c } = await service(t, {
    args: sh('echo "$GREETING"; pwd; id -u; id -g'),
    env: { GREETING: "hello world" },
    cwd: "/mnt",
    user: { uid: 1234, gid: 4321 },
  });
  await c.start();
  t.is((await c.wait()).code, 0);
  t.is((await collectLogs(c)).stdout, "hello world\n/mnt\n1234\n4321\n");
});

test("mounts: a read-only mount is visible and not writable; the rootfs is read-only, /tmp writable", async (t) => {
  const host = join(s.dir, "ro-data");
  mkdirSync(host, { recursive: true });
  writeFileSync(join(host, "greeting.txt"), "from the host\n");
  const { c } = await service(t, {
    args: sh(
      "cat /data/greeting.txt; touch /data/x 2>/dev/null && echo data-writable; touch /etc/x 2>/dev/null && echo root-writable; touch /tmp/x && echo tmp-ok",
    ),
    mounts: [{ source: host, destination: "/data", readOnly: true }],
  });
  await c.start();
  t.is((await c.wait()).code, 0);
  t.is((await collectLogs(c)).stdout, "from the host\ntmp-ok\n");
  t.false(existsSync(join(host, "x")));
  t.false(existsSync(join(s.rootfs, "etc", "x")));
});

test("resources.memoryBytes and pids reach the container's cgroup", async (t) => {
  const memoryBytes = 48 * 1024 * 1024;
  const { c } = await service(t, { args: sh("echo ready; exec sleep 1000"), resources: { memoryBytes, pids: 40 } });
  await c.start();
  await untilStdout(c, "ready");
  const pid = (await c.state()).pid;
  t.truthy(pid);
  const cgroups = readFileSync(`/proc/${pid}/cgroup`, "utf8").split("\n");
  const v1 = cgroups.find((l) => /^\d+:memory:/.test(l))?.split(":")[2];
  const limit = v1 !== undefined
    ? readFileSync(join("/sys/fs/cgroup/memory", v1, "memory.limit_in_bytes"), "utf8")
    : readFileSync(join("/sys/fs/cgroup", cgroups.find((l) => l.startsWith("0::"))!.slice(3), "memory.max"), "utf8");
  t.is(Number(limit.trim()), memoryBytes);
  t.log(`memory cgroup: ${v1 ?? "(cgroup v2)"} limit ${limit.trim()}`);
  const pidsPath = cgroups.find((l) => /^\d+:pids:/.test(l))?.split(":")[2];
  if (pidsPath !== undefined) t.is(readFileSync(join("/sys/fs/cgroup/pids", pidsPath, "pids.max"), "utf8").trim(), "40");
  await c.stop({ timeoutMs: 100 });
});

test("exec runs a further command with the service's env and cwd", async (t) => {
  const { c } = await service(t, { args: sh("echo ready; exec sleep 1000"), env: { FOO: "bar" }, cwd: "/mnt" });
  await c.start();
  await untilStdout(c, "ready");
  const r = await execToEnd(await c.exec({ args: sh('echo "$FOO"; pwd; echo oops >&2; exit 4') }));
  t.is(r.code, 4);
  t.is(text(r.stdout), "bar\n/mnt\n");
  t.is(text(r.stderr), "oops\n");
  await c.stop({ timeoutMs: 100 });
});

// What every exec promises (127/126, order, stdin, a terminal's size and resize, signals,
// cancel) is the conformance kit's capabilities/exec check (conformance.test.ts); here, what
// goes through runc: a terminal's worth of output, and no runc exec outliving a cancel.

// runc sizes its terminal from ours just after the command has started (its I/O loop, not
// before the exec): a command that asks at once may see 0x0 (busybox's stty then fails),
// so the size is asked until it is set. Before any input all the same.
const SIZE_ONCE_SET = 'i=0; while s=$(stty size 2>/dev/null); [ -z "$s" ] || [ "$s" = "0 0" ]; do i=$((i+1)); [ $i -gt 100 ] && break; sleep 0.05; done; echo "$s"';

test("exec on a terminal: a pty of the size asked, before any input, and 8 MiB through runc's terminal and ours", async (t) => {
  const c = await running(t);
  const sized = await execToEnd(await c.exec({ args: ["sh", "-c", `tty; ${SIZE_ONCE_SET}`], tty: true, size: { rows: 30, cols: 100 } }));
  t.regex(text(sized.stdout), /^\/dev\/pts\/\d+\r\n30 100\r\n$/);
  const zeros = await execToEnd(await c.exec({ args: ["head", "-c", "8388608", "/dev/zero"], tty: true }));
  t.deepEqual([zeros.code, zeros.stdout.byteLength], [0, 8 * 1024 * 1024]);
});

test("exec cancel leaves no runc exec on the host, on a terminal or not", async (t) => {
  const c = await running(t);
  // Marks of their own: the tests run at once, and the host sees every container's processes.
  const started = await Promise.all(["424201", "424202"].map((seconds, i) => c.exec({ args: ["sleep", seconds], tty: i === 1 })));
  for (const p of started) p.cancel();
  for (const p of started) t.deepEqual(await p.exited, { code: null, signal: "SIGKILL" });
  t.deepEqual([...processesMentioning("424201"), ...processesMentioning("424202")], []);
  t.is((await c.state()).phase, "running", "the service runs on");
});

test("pause freezes and resume thaws the container", async (t) => {
  const { c } = await service(t, { args: sh("echo ready; exec sleep 1000") });
  await c.start();
  await untilStdout(c, "ready");
  await c.pause();
  t.is((await c.state()).phase, "paused");
  await c.resume();
  t.is((await c.state()).phase, "running");
  await c.pause();
  await c.stop({ timeoutMs: 100 }); // stop resumes first, or the kill would wait on the freezer
  t.is((await c.state()).phase, "exited");
});

test("a command that does not exist fails start with the runtime's reason", async (t) => {
  const { c } = await service(t, { args: ["/no/such/binary"] });
  const err = await t.throwsAsync(c.start(), { instanceOf: VmctlError });
  t.is(err?.code, "FAILED_PRECONDITION");
  t.regex(err?.message ?? "", /no\/such\/binary/);
  const exit = await c.wait();
  t.is(exit.reason, "failed");
  t.is(exit.code, null);
});

test("stop before start ends the service without running it", async (t) => {
  const { c } = await service(t, { args: sh("echo should-not-run") });
  await c.stop();
  const exit = await c.wait();
  t.is(exit.reason, "stopped");
  await c.start();
  t.is((await collectLogs(c)).stdout, "");
});

test("destroy is idempotent and leaves no container, process, file or ledger entry", async (t) => {
  const { c, ctx } = await service(t, { args: sh("echo ready; exec sleep 1000") });
  await c.start();
  await untilStdout(c, "ready");
  const pid = (await c.state()).pid!;
  await c.destroy();
  await c.destroy();
  t.false(runcList(s).includes(c.containerId));
  t.deepEqual(processesMentioning(c.containerId), []);
  t.false(existsSync(`/proc/${pid}`));
  t.deepEqual(readdirSync(ctx.serviceDir), []);
  t.deepEqual(ctx.resources.list(), []);
  t.is((await c.state()).phase, "exited");
  await t.throwsAsync(c.start(), { instanceOf: VmctlError });
});

test("concurrent lifecycles do not interfere", async (t) => {
  const services = await Promise.all(
    [0, 1, 2, 3].map((i) => service(t, { args: sh(`echo svc${i}; echo e${i} >&2; sleep 0.2; exit ${10 + i}`) })),
  );
  await Promise.all(services.map(({ c }) => c.start()));
  const exits = await Promise.all(services.map(({ c }) => c.wait()));
  t.deepEqual(exits.map((e) => e.code), [10, 11, 12, 13], `exits: ${JSON.stringify(exits)}`);
  const logs = await Promise.all(services.map(({ c }) => collectLogs(c)));
  t.deepEqual(logs, [0, 1, 2, 3].map((i) => ({ stdout: `svc${i}\n`, stderr: `e${i}\n` })));
  await Promise.all(services.map(({ c }) => c.destroy()));
  for (const { c } of services) t.false(runcList(s).includes(c.containerId));
});

test("crun, when chosen, runs the container or reports crun's own reason", async (t) => {
  // On the project's machines crun refuses hybrid cgroup hierarchies; elsewhere it runs.
  const { c } = await service(t, { args: sh("echo via-crun"), runtime: "crun" });
  try {
    await c.start();
  } catch (err) {
    t.true(err instanceof VmctlError);
    const exit = await c.wait();
    t.is(exit.reason, "failed");
    t.truthy(exit.detail);
    t.log(`crun refused: ${exit.detail}`);
    return;
  }
  t.is((await c.wait()).code, 0);
  t.is((await collectLogs(c)).stdout, "via-crun\n");
});
