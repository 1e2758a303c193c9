// The lxc target against real LXC: every test runs containers from a busybox rootfs
// (or the busybox template) under a private lxcpath.
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { VmctlError } from "@vmctl/core/contract";
import type { LxcController } from "./controller.js";
import type { LxcSpec } from "./spec.js";
import { LxcTools } from "./tools.js";
import { lxcLs, lxcpathEntries, scratch, testContext, type TestContext } from "./testing/context.js";
import { execToEnd } from "@vmctl/core/target-kit";
import { collectLogs, processesMentioning, untilStdout, utf8 as text } from "@vmctl/plugin-conformance";

const s = scratch();
test.after.always(() => s.cleanup());

const factory = s.factory();
let seq = 0;

/** A new service on the shared factory, destroyed when the test ends whatever happens. */
async function service(
  t: import("ava").ExecutionContext,
  spec: Omit<LxcSpec, "rootfs"> & { rootfs?: string },
): Promise<{ c: LxcController; ctx: TestContext; spec: LxcSpec }> {
  const id = `t${++seq}-${process.pid}`;
  const ctx = testContext(s.dir, id);
  const valid = factory.validate(spec.template === undefined ? { rootfs: s.rootfs, ...spec } : spec);
  const c = await factory.create(id, valid, ctx);
  t.teardown(() => c.destroy());
  return { c, ctx, spec: valid };
}

/** What LXC itself says about a container ("RUNNING", "FROZEN", "STOPPED"). */
function lxcState(name: string): Promise<string | undefined> {
  return new LxcTools({ execute: "lxc-execute", stop: "lxc-stop", info: "lxc-info" }, s.lxcpath).state(name);
}

function sh(script: string): string[] {
  return ["sh", "-c", script];
}

/**
 * A line's end on an lxc-attach terminal: the container's terminal writes "\r\n", and
 * lxc-attach sets ONLCR on the terminal it relays to (as it does on a user's), which
 * makes that "\r\r\n" (the same on a screen).
 */
const LXC_NEWLINE = /\r?\r\n/g;

/** A running service to exec in. */
async function running(t: import("ava").ExecutionContext, spec: Omit<LxcSpec, "rootfs" | "args"> = {}): Promise<LxcController> {
  const { c } = await service(t, { args: sh("echo ready; exec sleep 1000"), ...spec });
  await c.start();
  await untilStdout(c, "ready");
  return c;
}

test("lifecycle: create → prepare → start → logs → wait gives the exit code; stdout and stderr apart", async (t) => {
  const { c, ctx } = await service(t, { args: sh("echo out; echo err >&2; echo ready; sleep 0.3; exit 7") });
  t.is((await c.state()).phase, "created");
  t.deepEqual(ctx.resources.list(), [], "create makes nothing");
  t.false(lxcpathEntries(s.lxcpath).includes(c.containerName));

  await c.prepare();
  await c.prepare();
  const config = readFileSync(join(s.lxcpath, c.containerName, "config"), "utf8");
  t.true(config.includes(`lxc.rootfs.path = dir:${s.rootfs}`));
  t.true(config.includes("# label vmctl.io/owner=lxc-tests"));
  t.true(lxcLs(s.lxcpath).includes(c.containerName));
  t.is((await c.state()).phase, "created");

  await c.start();
  await c.start(); // idempotent
  t.deepEqual(ctx.resources.list().map((r) => `${r.kind} ${r.key}`).sort(), [
    `dir ${join(ctx.serviceDir, "run")}`,
    `lxc-container ${c.containerName}`,
    `process shim:${c.containerName}`,
  ]);
  const shim = ctx.resources.list().find((r) => r.kind === "process")?.data as { pid: number; startTime: string };
  t.true(shim.pid > 0 && shim.startTime.length > 0, "the shim is recorded with pid and start time");

  const exit = await c.wait();
  t.is(exit.code, 7);
  t.is(exit.reason, "exited");
  const state = await c.state();
  t.is(state.phase, "exited");
  t.is(state.instance, c.containerName);
  t.deepEqual(await collectLogs(c), { stdout: "out\nready\n", stderr: "err\n" });
});

test("state is running with the container init's pid; LXC sees the container RUNNING", async (t) => {
  const { c } = await service(t, { args: sh("echo ready; exec sleep 1000") });
  await c.start();
  await untilStdout(c, "ready");
  const state = await c.state();
  t.is(state.phase, "running");
  t.true(typeof state.pid === "number" && existsSync(`/proc/${state.pid}`));
  t.is(await lxcState(c.containerName), "RUNNING");
  await c.stop({ timeoutMs: 100 });
  t.is((await c.state()).phase, "exited");
  t.is(await lxcState(c.containerName), "STOPPED");
});

test("logs({ follow }) streams output until the container exits", async (t) => {
  const { c } = await service(t, { args: sh("for i in 1 2 3; do echo line$i; sleep 0.1; done; echo bye >&2") });
  await c.start();
  const logs = await collectLogs(c, true);
  t.deepEqual(logs, { stdout: "line1\nline2\nline3\n", stderr: "bye\n" });
  t.is((await c.state()).phase, "exited");
});

test("stop is graceful: SIGTERM reaches the workload, which may take longer than init.lxc's 1 s to finish", async (t) => {
  const { c } = await service(t, {
    args: sh('trap "echo got-term; sleep 1.5; echo clean; exit 0" TERM; echo ready; while true; do sleep 0.05; done'),
  });
  await c.start();
  await untilStdout(c, "ready");
  const started = Date.now();
  await c.stop({ timeoutMs: 20_000 });
  t.true(Date.now() - started >= 1400, "the workload got the time it needed");
  const exit = await c.wait();
  t.deepEqual({ code: exit.code, reason: exit.reason }, { code: 0, reason: "stopped" });
  t.is((await collectLogs(c)).stdout, "ready\ngot-term\nclean\n");
});

test("stop of a workload without a TERM trap: it dies of SIGTERM", async (t) => {
  const { c } = await service(t, { args: sh("echo ready; exec sleep 1000") });
  await c.start();
  await untilStdout(c, "ready");
  await c.stop({ timeoutMs: 5000 });
  const exit = await c.wait();
  t.deepEqual({ code: exit.code, signal: exit.signal, reason: exit.reason }, { code: null, signal: "SIGTERM", reason: "stopped" });
});

test("stop forces: a workload ignoring TERM is killed after the timeout", async (t) => {
  const { c } = await service(t, { args: sh('trap "" TERM; echo ready; while true; do sleep 0.05; done') });
  await c.start();
  await untilStdout(c, "ready");
  const started = Date.now();
  await c.stop({ timeoutMs: 300 });
  t.true(Date.now() - started < 1000, `stop took ${Date.now() - started} ms`);
  const state = await c.state();
  t.deepEqual({ phase: state.phase, code: state.exit?.code, signal: state.exit?.signal, reason: state.exit?.reason }, {
    phase: "exited",
    code: null,
    signal: "SIGKILL",
    reason: "stopped",
  });
  t.is(await lxcState(c.containerName), "STOPPED");
});

test("env, workdir and hostname are applied; the orchestrator's environment does not leak in", async (t) => {
  process.env.VMCTL_LXC_TEST_SECRET = "leak";
  const { c } = await service(t, { args: sh('echo "$GREETING"; pwd; hostname; echo "secret=$VMCTL_LXC_TEST_SECRET"'), env: { GREETING: "hello world" }, workdir: "/srv/app" });
  await c.start();
  t.is((await c.wait()).code, 0);
  t.is((await collectLogs(c)).stdout, `hello world\n/srv/app\n${c.id}\nsecret=\n`);
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

test("resources reach the container's cgroup (memory, pids)", async (t) => {
  const { c } = await service(t, { args: sh("echo ready; exec sleep 1000"), resources: { memoryMiB: 48, pids: 40 } });
  await c.start();
  await untilStdout(c, "ready");
  const pid = (await c.state()).pid!;
  const cgroups = readFileSync(`/proc/${pid}/cgroup`, "utf8").split("\n");
  const v1 = (controller: string) => cgroups.find((l) => l.split(":")[1] === controller)?.split(":")[2];
  const memory = v1("memory");
  const limit =
    memory !== undefined
      ? readFileSync(join("/sys/fs/cgroup/memory", memory, "memory.limit_in_bytes"), "utf8")
      : readFileSync(join("/sys/fs/cgroup", cgroups.find((l) => l.startsWith("0::"))!.slice(3), "memory.max"), "utf8");
  t.is(Number(limit.trim()), 48 * 1024 * 1024);
  const pids = v1("pids");
  if (pids !== undefined) t.is(readFileSync(join("/sys/fs/cgroup/pids", pids, "pids.max"), "utf8").trim(), "40");
  t.log(`cgroup: memory ${memory ?? "(v2)"}`);
  await c.stop({ timeoutMs: 100 });
});

test("exec runs a further command with the service's env and workdir, not the orchestrator's", async (t) => {
  process.env.VMCTL_LXC_TEST_SECRET = "leak";
  const { c } = await service(t, { args: sh("echo ready; exec sleep 1000"), env: { FOO: "bar" }, workdir: "/mnt" });
  await c.start();
  await untilStdout(c, "ready");
  const r = await execToEnd(await c.exec({ args: sh('echo "$FOO"; pwd; echo "secret=$VMCTL_LXC_TEST_SECRET"; echo oops >&2; exit 4') }));
  t.is(r.code, 4);
  t.is(text(r.stdout), "bar\n/mnt\nsecret=\n");
  t.is(text(r.stderr), "oops\n");
  // The same env and workdir on a terminal: a pty of the size asked from the start (before any input).
  const onTty = await execToEnd(await c.exec({ args: sh('echo "$FOO"; pwd; tty; stty size; exit 5'), tty: true, size: { rows: 30, cols: 100 } }));
  t.is(onTty.code, 5);
  t.regex(text(onTty.stdout).replace(LXC_NEWLINE, "\n"), /^bar\n\/mnt\n\/dev\/pts\/\d+\n30 100\n$/);
  t.is((await c.state()).phase, "running");
  await c.stop({ timeoutMs: 100 });
});

// The shared exec behaviour (127/126, order, stdin, terminal size and resize, signals —
// lxc-attach forwards none, so the target sends them —, cancel) is checked by the kit's
// capabilities/exec (conformance.test.ts). Here: lxc-attach's own terminal, and its processes.

test("exec on a terminal: 8 MiB of output through lxc-attach's terminal and ours", async (t) => {
  const zeros = await execToEnd(await (await running(t)).exec({ args: ["head", "-c", "8388608", "/dev/zero"], tty: true }));
  t.deepEqual([zeros.code, zeros.stdout.byteLength], [0, 8 * 1024 * 1024]);
});

for (const tty of [false, true]) {
  test(`exec cancel: no lxc-attach of the command is left on the host${tty ? " (tty)" : ""}`, async (t) => {
    const c = await running(t);
    const seconds = tty ? "525202" : "525201"; // its own mark: the host sees every container's processes
    const p = await c.exec({ args: ["sleep", seconds], tty });
    t.true(processesMentioning(seconds).length > 0, "lxc-attach runs the command");
    p.cancel();
    t.deepEqual(await p.exited, { code: null, signal: "SIGKILL" });
    t.deepEqual(processesMentioning(seconds), []);
  });
}

test("pause freezes (no output) and resume thaws the container", async (t) => {
  const { c } = await service(t, { args: sh("while :; do echo tick; sleep 0.05; done") });
  await c.start();
  await untilStdout(c, "tick");
  await c.pause();
  await c.pause(); // idempotent
  t.is((await c.state()).phase, "paused");
  const frozen = (await collectLogs(c)).stdout.length;
  await new Promise((r) => setTimeout(r, 300));
  t.is((await collectLogs(c)).stdout.length, frozen, "no output while frozen");
  t.is(await lxcState(c.containerName), "FROZEN");
  await c.resume();
  t.is((await c.state()).phase, "running");
  await c.pause();
  await c.stop({ timeoutMs: 100 }); // stop thaws first, or the signal would wait on the freezer
  t.is((await c.state()).phase, "exited");
});

test("a command that is not in the rootfs fails start with a clear reason, and nothing runs", async (t) => {
  const { c, ctx } = await service(t, { args: ["/no/such/binary"] });
  const err = await t.throwsAsync(c.start(), { instanceOf: VmctlError });
  t.is(err?.code, "FAILED_PRECONDITION");
  t.regex(err?.message ?? "", /\/no\/such\/binary does not exist in the rootfs/);
  t.is(err?.details.field, "spec.args[0]");
  const exit = await c.wait();
  t.deepEqual({ reason: exit.reason, code: exit.code }, { reason: "failed", code: null });
  t.false(ctx.resources.list().some((r) => r.kind === "process"));
});

test("LXC's own start failure is reported with LXC's root cause", async (t) => {
  // A file source mounted where the read-only rootfs has a directory: LXC cannot mount it.
  const file = join(s.dir, "a-file");
  writeFileSync(file, "x");
  mkdirSync(join(s.rootfs, "mnt", "dir-here"), { recursive: true });
  const { c } = await service(t, { args: ["true"], mounts: [{ source: file, destination: "/mnt/dir-here" }] });
  const err = await t.throwsAsync(c.start(), { instanceOf: VmctlError });
  t.is(err?.code, "FAILED_PRECONDITION");
  t.log(err?.message);
  const exit = await c.wait();
  t.is(exit.reason, "failed");
  t.truthy(exit.detail);
  t.notRegex(exit.detail ?? "", /^lxc-execute exited with status/);
});

test("stop before start ends the service without running it", async (t) => {
  const { c } = await service(t, { args: sh("echo should-not-run") });
  await c.stop();
  t.is((await c.wait()).reason, "stopped");
  await c.start();
  t.is((await collectLogs(c)).stdout, "");
});

test("destroy is idempotent and leaves no container, process, file or ledger entry; the user's rootfs stays", async (t) => {
  const { c, ctx } = await service(t, { args: sh("echo ready; exec sleep 1000") });
  await c.start();
  await untilStdout(c, "ready");
  const pid = (await c.state()).pid!;
  await c.destroy();
  await c.destroy();
  t.false(lxcLs(s.lxcpath).includes(c.containerName));
  t.false(lxcpathEntries(s.lxcpath).includes(c.containerName));
  t.deepEqual(processesMentioning(c.containerName), []);
  t.false(existsSync(`/proc/${pid}`));
  t.deepEqual(readdirSync(ctx.serviceDir), []);
  t.deepEqual(ctx.resources.list(), []);
  t.true(existsSync(join(s.rootfs, "bin", "busybox")), "the user's rootfs is never lxc-destroyed");
  // LXC's monitor removes the container's cgroups when lxc-execute ends: none may be left.
  const cgroups = readdirSync("/sys/fs/cgroup").flatMap((h) => {
    try {
      return readdirSync(join("/sys/fs/cgroup", h)).filter((d) => d.startsWith("lxc.") && d.includes(c.containerName));
    } catch {
      return [];
    }
  });
  t.deepEqual(cgroups, []);
  t.is((await c.state()).phase, "exited");
  await t.throwsAsync(c.start(), { instanceOf: VmctlError });
});

test("concurrent lifecycles do not interfere", async (t) => {
  const services = await Promise.all(
    [0, 1, 2, 3].map((i) => service(t, { args: sh(`echo svc${i}; echo e${i} >&2; sleep 0.2; exit ${10 + i}`) })),
  );
  await Promise.all(services.map(({ c }) => c.start()));
  const exits = await Promise.all(services.map(({ c }) => c.wait()));
  t.deepEqual(exits.map((e) => e.code), [10, 11, 12, 13]);
  const logs = await Promise.all(services.map(({ c }) => collectLogs(c)));
  t.deepEqual(logs, [0, 1, 2, 3].map((i) => ({ stdout: `svc${i}\n`, stderr: `e${i}\n` })));
  await Promise.all(services.map(({ c }) => c.destroy()));
  for (const { c } of services) t.false(lxcpathEntries(s.lxcpath).includes(c.containerName));
});

// ---- templates ----

test("template: lxc-create -t busybox builds a private rootfs; the service runs in it; destroy removes it", async (t) => {
  const { c, ctx } = await service(t, { template: "busybox", args: sh("echo from-template; ls /sbin/init >/dev/null && echo has-init; touch /etc/w && echo writable") });
  await c.prepare();
  const dir = join(s.lxcpath, c.containerName);
  t.true(existsSync(join(dir, "rootfs", "bin", "busybox")));
  await c.start();
  t.is((await c.wait()).code, 0);
  t.is((await collectLogs(c)).stdout, "from-template\nhas-init\nwritable\n");
  await c.destroy();
  t.false(existsSync(dir));
  t.false(lxcLs(s.lxcpath).includes(c.containerName));
  t.deepEqual(ctx.resources.list(), []);
});

test("template not installed: refused at create with NOT_FOUND naming spec.template, nothing made", async (t) => {
  const id = `missing-template-${process.pid}`;
  const ctx = testContext(s.dir, id);
  const spec = factory.validate({ template: "no-such-template", args: ["true"] });
  const err = await t.throwsAsync(factory.create(id, spec, ctx), { instanceOf: VmctlError });
  t.is(err?.code, "NOT_FOUND");
  t.is(err?.details.field, "spec.template");
  t.regex(err?.message ?? "", /spec\.template: LXC template "no-such-template" is not installed \(no \/usr\/share\/lxc\/templates\/lxc-no-such-template\)/);
  t.deepEqual(ctx.resources.list(), []);
  t.deepEqual(readdirSync(ctx.serviceDir), []);
  t.false(lxcpathEntries(s.lxcpath).some((n) => n.includes(id)));
});

test("a template that fails: prepare reports it naming spec.template, and leaves nothing on the target", async (t) => {
  const { c, ctx } = await service(t, { template: "busybox", templateArgs: ["--no-such-option"], args: ["true"] });
  const err = await t.throwsAsync(c.prepare(), { instanceOf: VmctlError });
  t.is(err?.code, "FAILED_PRECONDITION");
  t.is(err?.details.field, "spec.template");
  t.log(err?.message);
  t.false(lxcpathEntries(s.lxcpath).includes(c.containerName));
  t.false(ctx.resources.list().some((r) => r.kind === "lxc-container"));
  await c.destroy();
  t.deepEqual(ctx.resources.list(), []);
});
