// Streaming exec on the docker target against a real dockerd: separate streams, stdin,
// a terminal and its size, signals, cancel, commands that cannot run. Each test execs
// in a service of its own (`sleep`), destroyed when it ends.
import test, { type ExecutionContext } from "ava";
import { setTimeout as sleep } from "node:timers/promises";
import { VmctlError, type ExecOutput } from "@vmctl/core/contract";
import { execToEnd } from "@vmctl/core/target-kit";
import { ExecReader, untilStdout, utf8 as text } from "@vmctl/plugin-conformance";
import type { DockerController } from "./controller.js";
import { client, scratch } from "./testing/context.js";
import { sh } from "./testing/helpers.js";

const s = await scratch("vmctl-docker-exec-");
const docker = client(s.socket);
const factory = s.factory();
let seq = 0;

/** A running service for one test, destroyed when the test ends whatever happens. */
async function running(t: ExecutionContext): Promise<DockerController> {
  const id = `x${++seq}`;
  const c = await factory.create(id, factory.validate({ image: s.image, args: sh("echo ready; exec sleep 1000") }), s.context(id));
  t.teardown(() => c.destroy());
  await c.start();
  await untilStdout(c, "ready");
  return c;
}

/** The command lines of the container's processes, as the host's ps sees them (docker top). */
async function processesIn(c: DockerController): Promise<string[]> {
  const top = await docker.getContainer(c.containerName).top({ ps_args: "-o pid,args" });
  return top.Processes.map((p: string[]) => p.slice(1).join(" "));
}

async function until(what: string, check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

test.after.always("no container of this file is left on the daemon", async (t) => {
  const left = await s.leftovers();
  await factory.close();
  await s.cleanup();
  t.deepEqual(left, []);
});

test("stdout and stderr come as separate streams, in order within each; the exit code follows the output", async (t) => {
  const c = await running(t);
  const command = await c.exec({ args: sh("echo out1; echo err1 >&2; echo out2; echo err2 >&2; exit 3") });
  const chunks: ExecOutput[] = [];
  const order: string[] = [];
  void command.exited.then(() => order.push("exited"));
  for await (const chunk of command) chunks.push(chunk);
  order.push("output ended");
  const stream = (name: string): string => chunks.filter((ch) => ch.stream === name).map((ch) => text(ch.data)).join("");
  t.is(stream("stdout"), "out1\nout2\n");
  t.is(stream("stderr"), "err1\nerr2\n");
  t.deepEqual(await command.exited, { code: 3 });
  t.deepEqual(order, ["output ended", "exited"]);
  t.throws(() => command[Symbol.asyncIterator](), { instanceOf: VmctlError, code: "FAILED_PRECONDITION", message: /read once/ });
});

test("exec is refused with INVALID_ARGUMENT for empty args and FAILED_PRECONDITION when the service is not running", async (t) => {
  const id = `x${++seq}`;
  const c = await factory.create(id, factory.validate({ image: s.image, args: sh("exit 0") }), s.context(id));
  t.teardown(() => c.destroy());
  const empty = await t.throwsAsync(c.exec({ args: [] }), { instanceOf: VmctlError, code: "INVALID_ARGUMENT" });
  t.is(empty?.details.field, "args");
  await t.throwsAsync(c.exec({ args: ["true"] }), { instanceOf: VmctlError, code: "FAILED_PRECONDITION", message: /created/ }, "never started");
  await c.start();
  await c.wait();
  await t.throwsAsync(c.exec({ args: ["true"] }), { instanceOf: VmctlError, code: "FAILED_PRECONDITION", message: /exited/ });
});

test("stdin: what is written reaches the command before stdin ends; closeStdin gives it EOF (cat ends, 0)", async (t) => {
  const c = await running(t);
  const command = await c.exec({ args: ["cat"], stdin: true });
  const reader = new ExecReader(command);
  await command.write(Buffer.from("hello\n"));
  await reader.until("hello\n", "stdout");
  await command.write(Buffer.from("second line\n"));
  await reader.until("second line\n", "stdout");
  await command.closeStdin();
  await command.closeStdin(); // idempotent
  await reader.rest();
  t.deepEqual(reader.byStream, { stdout: "hello\nsecond line\n", stderr: "" });
  t.deepEqual(await command.exited, { code: 0 });
  await t.throwsAsync(command.write(Buffer.from("late")), { instanceOf: VmctlError, code: "FAILED_PRECONDITION", message: /closed/ });
});

test("stdin: a write resolves as the command takes it: 8 MiB through wc -c; to a command that never reads, it stays pending", async (t) => {
  const c = await running(t);
  const counting = await c.exec({ args: sh("wc -c"), stdin: true });
  const reader = new ExecReader(counting);
  const block = Buffer.alloc(1024 * 1024, 0x61);
  for (let i = 0; i < 8; i++) await counting.write(block);
  await counting.closeStdin();
  await reader.rest();
  t.is(reader.byStream.stdout.trim(), String(8 * block.byteLength));
  t.deepEqual(await counting.exited, { code: 0 });

  const deaf = await c.exec({ args: ["sleep", "4747"], stdin: true });
  let settled = false;
  const write = deaf.write(Buffer.alloc(16 * 1024 * 1024)).finally(() => (settled = true));
  await sleep(1000);
  t.false(settled, "16 MiB cannot all be taken by a command that reads nothing");
  deaf.cancel();
  await t.throwsAsync(write, { instanceOf: VmctlError, code: "FAILED_PRECONDITION" });
  t.deepEqual(await deaf.exited, { code: null, signal: "SIGKILL" });
});

test("without stdin the command reads an empty stdin, and write is refused", async (t) => {
  const c = await running(t);
  const command = await c.exec({ args: sh("cat; echo after-cat") });
  await t.throwsAsync(command.write(Buffer.from("x")), { instanceOf: VmctlError, code: "FAILED_PRECONDITION", message: /without stdin/ });
  const r = await execToEnd(command);
  t.is(text(r.stdout), "after-cat\n");
  t.is(r.code, 0);
});

test("tty: all output is stdout, stty reports the size asked, resize changes it; closeStdin types EOF", async (t) => {
  const c = await running(t);
  const command = await c.exec({
    args: sh("read a; busybox stty size; echo to-stderr >&2; read b; busybox stty size; cat; echo cat-ended"),
    tty: true,
    size: { rows: 24, cols: 80 },
  });
  const reader = new ExecReader(command);
  await command.write(Buffer.from("go\n"));
  await reader.until("24 80\r\n", "stdout");
  await command.resize({ rows: 11, cols: 22 });
  await command.write(Buffer.from("go\n"));
  await reader.until("11 22\r\n", "stdout");
  await command.closeStdin();
  await reader.rest();
  const out = reader.byStream;
  t.is(out.stderr, "", "a terminal has one output");
  t.regex(out.stdout, /to-stderr\r\n/);
  t.regex(out.stdout, /cat-ended\r\n$/, "cat read the terminal's EOF");
  t.deepEqual(await command.exited, { code: 0 });
  await command.resize({ rows: 5, cols: 5 }); // ended: nothing to resize, not an error
  await t.throwsAsync(command.resize({ rows: 0, cols: 80 }), { instanceOf: VmctlError, code: "INVALID_ARGUMENT" });
});

test("without a tty resize is ignored and the command has no terminal", async (t) => {
  const c = await running(t);
  const command = await c.exec({ args: sh("busybox stty size || echo no-terminal") });
  await command.resize({ rows: 10, cols: 10 });
  const r = await execToEnd(command);
  t.regex(text(r.stdout), /no-terminal/);
});

test("signal: SIGTERM ends sleep; Docker reports 143, read as the signal the session sent", async (t) => {
  const c = await running(t);
  const command = await c.exec({ args: ["sleep", "4242"] });
  await until("the exec'd sleep", async () => (await processesIn(c)).some((p) => p.includes("sleep 4242")));
  await t.throwsAsync(command.signal("SIGNOPE"), { instanceOf: VmctlError, code: "INVALID_ARGUMENT" });
  await command.signal("SIGTERM");
  const r = await execToEnd(command);
  t.deepEqual({ code: r.code, signal: r.signal }, { code: null, signal: "SIGTERM" });
  await command.signal("SIGTERM"); // ended: nothing to signal, not an error
});

test("signal: a signal the command traps reaches it (on a tty here): its handler runs and its own exit code stands", async (t) => {
  const c = await running(t);
  const command = await c.exec({ args: sh("trap 'echo got-int; exit 5' INT; echo armed; while :; do sleep 0.05; done"), tty: true });
  const reader = new ExecReader(command);
  await reader.until("armed", "stdout");
  await command.signal("SIGINT");
  await reader.rest();
  t.regex(reader.byStream.stdout, /got-int/);
  t.deepEqual(await command.exited, { code: 5 });
});

test("a command's own exit 143 is its code, not a signal (no signal was sent)", async (t) => {
  const c = await running(t);
  const r = await execToEnd(await c.exec({ args: sh("exit 143") }));
  t.is(r.code, 143);
  t.is(r.signal, undefined);
});

test("cancel kills the command in the container, ends the output quietly and is idempotent", async (t) => {
  const c = await running(t);
  const command = await c.exec({ args: sh("echo started; exec sleep 4343"), stdin: true });
  const reader = new ExecReader(command);
  await reader.until("started", "stdout");
  await until("the exec'd sleep", async () => (await processesIn(c)).some((p) => p.includes("sleep 4343")));
  const reading = reader.rest();
  command.cancel();
  command.cancel();
  await reading; // ends, without an error
  await until("the exec'd sleep to be gone", async () => !(await processesIn(c)).some((p) => p.includes("sleep 4343")));
  t.deepEqual(await command.exited, { code: null, signal: "SIGKILL" });
  await t.throwsAsync(command.write(Buffer.from("x")), { instanceOf: VmctlError, code: "FAILED_PRECONDITION" });
  t.is((await c.state()).phase, "running", "the service itself goes on");
});

test("a reader that stops early cancels the command (it would otherwise wait on its output forever)", async (t) => {
  const c = await running(t);
  const command = await c.exec({ args: sh("while :; do echo line-of-4444; done") });
  let lines = 0;
  for await (const chunk of command) {
    lines += text(chunk.data).split("\n").length;
    if (lines > 100) break;
  }
  await until("the loop to be gone", async () => !(await processesIn(c)).some((p) => p.includes("line-of-4444")));
  t.deepEqual(await command.exited, { code: null, signal: "SIGKILL" });
});

test("cancel before reading anything still ends the command, and exited settles", async (t) => {
  const c = await running(t);
  const command = await c.exec({ args: ["sleep", "4545"] });
  await until("the exec'd sleep", async () => (await processesIn(c)).some((p) => p.includes("sleep 4545")));
  command.cancel();
  t.deepEqual(await command.exited, { code: null, signal: "SIGKILL" });
  t.false((await processesIn(c)).some((p) => p.includes("sleep 4545")));
});

test("a command that cannot be run: 127 when not found, 126 when not executable, Docker's reason naming it on stderr", async (t) => {
  const c = await running(t);
  const missing = await execToEnd(await c.exec({ args: ["no-such-command", "arg"] }));
  t.is(missing.code, 127);
  t.is(text(missing.stdout), "");
  t.regex(text(missing.stderr), /no-such-command.*not found/);
  const missingPath = await execToEnd(await c.exec({ args: ["/no/such/path"] }));
  t.is(missingPath.code, 127);
  t.regex(text(missingPath.stderr), /\/no\/such\/path/);
  const directory = await execToEnd(await c.exec({ args: ["/etc"] }));
  t.is(directory.code, 126);
  t.regex(text(directory.stderr), /"\/etc": permission denied/);
  const onTerminal = await execToEnd(await c.exec({ args: ["no-such-command"], tty: true }));
  t.is(onTerminal.code, 127);
  t.regex(text(onTerminal.stdout), /no-such-command/, "with a tty the reason is on the terminal");
});

test("the service destroyed under a running exec: the output ends; exited says the command was killed (or that its end is unknown)", async (t) => {
  const c = await running(t);
  const command = await c.exec({ args: sh("echo started; exec sleep 4646") });
  const reader = new ExecReader(command);
  await reader.until("started", "stdout");
  await c.destroy();
  await reader.rest();
  // Docker 20.10 keeps the exec's record after the container is gone: SIGKILL's 137, not
  // sent by the session, so a code. A daemon that dropped it makes exited reject.
  const exit = await command.exited.catch((err: unknown) => err);
  if (exit instanceof VmctlError) t.pass(`exited rejected: ${exit.message}`);
  else t.deepEqual(exit, { code: 137 });
});
