// The contract's ExecProcess over the real vmctl-agent, outside any VM (agent/testing.ts):
// what exec() into an image VM does through the guest's vsock, here through a unix socket.
import { existsSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import anyTest, { type TestFn } from "ava";
import { VmctlError, type ExecOutput, type ExecRequest } from "@vmctl/core/contract";
import { execToEnd } from "@vmctl/core/target-kit";
import { startAgent, type RunningAgent } from "./agent/testing.js";
import { startExec, type AgentExecProcess } from "./exec-process.js";
import type { VmWorkload } from "./vm-config.js";

const test = anyTest as TestFn<{ agent: RunningAgent }>;

test.before(async (t) => {
  t.context.agent = await startAgent();
});
test.after.always(async (t) => {
  await t.context.agent?.stop();
});

/** The workload whose env, cwd and user an exec runs with. */
const workload: VmWorkload = { args: ["sleep", "infinity"], imageEnv: ["A=image", "B=image"], env: ["B=caller"], cwd: "/tmp", user: "65534" };

function exec(t: { context: { agent: RunningAgent } }, request: ExecRequest): Promise<AgentExecProcess> {
  return startExec(t.context.agent.connection, request, workload);
}

const text = (data: Uint8Array) => Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString();

/** Reads output until all of it read so far matches `pattern`; returns that text. */
async function readUntil(output: AsyncIterator<ExecOutput>, pattern: RegExp, seen = ""): Promise<string> {
  while (!pattern.test(seen)) {
    const next = await output.next();
    if (next.done) throw new Error(`output ended before it matched ${pattern}: ${JSON.stringify(seen)}`);
    seen += text(next.value.data);
  }
  return seen;
}

/** Whether `promise` has settled, after the event loop had a turn. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  promise.then(() => (done = true), () => (done = true));
  await sleep(20);
  return done;
}

/** Resolves once /proc/<pid> is gone (the agent runs on this host: same PID namespace). */
async function untilGone(pid: number): Promise<boolean> {
  for (let i = 0; i < 100 && existsSync(`/proc/${pid}`); i++) await sleep(20);
  return !existsSync(`/proc/${pid}`);
}

test("stdout and stderr apart, the exit code, in the workload's env, cwd and user", async (t) => {
  const command = await exec(t, { args: ["sh", "-c", 'echo "$A $B $(pwd) $(id -u)"; echo err >&2; exit 7'] });
  const result = await execToEnd(command);
  t.is(text(result.stdout), "image caller /tmp 65534\n");
  t.is(text(result.stderr), "err\n");
  t.deepEqual({ code: result.code, signal: result.signal }, { code: 7, signal: undefined });
});

test("exited settles only after the output was read to its end", async (t) => {
  const command = await exec(t, { args: ["sh", "-c", "echo last; exit 3"] });
  await sleep(200);
  t.false(await settled(command.exited), "the exit is behind unread output");
  const chunks: string[] = [];
  for await (const chunk of command) chunks.push(text(chunk.data));
  t.deepEqual(chunks, ["last\n"]);
  t.deepEqual(await command.exited, { code: 3 });
});

test("a missing command exits 127 with the agent's reason on stderr, once", async (t) => {
  const result = await execToEnd(await exec(t, { args: ["no-such-command-here", "x"] }));
  t.is(result.code, 127);
  t.is(text(result.stderr), "vmctl-agent: no-such-command-here: command not found\n");
  t.is(result.stdout.byteLength, 0);
});

test("a command that is not executable exits 126; with a tty the reason is on the terminal", async (t) => {
  const result = await execToEnd(await exec(t, { args: ["/etc/passwd"], tty: true }));
  t.is(result.code, 126);
  t.regex(text(result.stdout), /^vmctl-agent: \/etc\/passwd: permission denied/);
  t.is(text(result.stdout).split("vmctl-agent").length, 2, "said once");
  t.is(result.stderr.byteLength, 0, "a tty has only stdout");
});

test("stdin: what is written comes back through cat, and closing it ends cat", async (t) => {
  const command = await exec(t, { args: ["cat"], stdin: true });
  const output = command[Symbol.asyncIterator]();
  await command.write(Buffer.from("hello through stdin\n"));
  t.is(await readUntil(output, /\n/), "hello through stdin\n");
  await command.write(Buffer.from("second"));
  await command.closeStdin();
  t.is(await readUntil(output, /second/), "second");
  t.true((await output.next()).done);
  t.deepEqual(await command.exited, { code: 0 });
});

test("without stdin the command reads an empty one", async (t) => {
  const result = await execToEnd(await exec(t, { args: ["wc", "-c"] }));
  t.is(text(result.stdout).trim(), "0");
  t.is(result.code, 0);
});

test("a tty of the size asked; resize reaches it; all output is stdout", async (t) => {
  const command = await exec(t, { args: ["sh", "-c", "[ -t 0 ] && [ -t 1 ] && echo is-a-tty; stty size; read line; stty size; echo err >&2; exit 4"], tty: true, size: { rows: 30, cols: 100 } });
  const streams = new Set<string>();
  const output = (async function* () {
    for await (const chunk of command) {
      streams.add(chunk.stream);
      yield chunk;
    }
  })();
  let seen = await readUntil(output, /30 100/);
  t.regex(seen, /is-a-tty/);
  await command.resize({ rows: 40, cols: 120 });
  await command.write(Buffer.from("go\n"));
  seen = await readUntil(output, /40 120[\s\S]*err/, seen);
  t.true((await output.next()).done);
  t.deepEqual([...streams], ["stdout"]);
  t.deepEqual(await command.exited, { code: 4 });
});

test("signal(): a trapped SIGTERM is handled; SIGKILL ends it with no code", async (t) => {
  const trapping = await exec(t, { args: ["sh", "-c", 'trap "echo got-term; exit 3" TERM; echo ready; while :; do sleep 0.05; done'] });
  const output = trapping[Symbol.asyncIterator]();
  await readUntil(output, /ready/);
  await trapping.signal("SIGTERM");
  await readUntil(output, /got-term/);
  t.true((await output.next()).done);
  t.deepEqual(await trapping.exited, { code: 3 });

  const sleeping = await exec(t, { args: ["sleep", "60"] });
  const reading = execToEnd(sleeping);
  await sleeping.signal("SIGKILL");
  t.like(await reading, { code: null, signal: "SIGKILL" });
});

test("cancel() kills the command and ends the output; exited says SIGKILL; a second cancel is harmless", async (t) => {
  const command = await exec(t, { args: ["sh", "-c", "echo $$; exec sleep 60"] });
  const output = command[Symbol.asyncIterator]();
  const pid = Number((await readUntil(output, /\n/)).trim());
  command.cancel();
  command.cancel();
  t.true((await output.next()).done);
  t.deepEqual(await command.exited, { code: null, signal: "SIGKILL" });
  t.true(await untilGone(pid), `pid ${pid} still runs`);
  await t.throwsAsync(command.write(Buffer.from("late")), { instanceOf: VmctlError });
});

test("cancel() after the end changes nothing", async (t) => {
  const command = await exec(t, { args: ["true"] });
  const result = await execToEnd(command);
  command.cancel();
  t.is(result.code, 0);
  t.deepEqual(await command.exited, { code: 0 });
});

test("32 MiB of output, read at the reader's pace: a paused reader holds the command up", async (t) => {
  const size = 32 * 1024 * 1024;
  const command = await exec(t, { args: ["head", "-c", String(size), "/dev/zero"] });
  const output = command[Symbol.asyncIterator]();
  const first = await output.next();
  t.false(first.done);
  await sleep(300);
  t.false(await settled(command.exited), "the command cannot have finished while its output is unread");
  let bytes = first.done ? 0 : first.value.data.byteLength;
  for (let next = await output.next(); !next.done; next = await output.next()) bytes += next.value.data.byteLength;
  t.is(bytes, size);
  t.deepEqual(await command.exited, { code: 0 });

  const whole = await execToEnd(await exec(t, { args: ["head", "-c", String(size), "/dev/urandom"] }), { maxBytes: size });
  t.is(whole.stdout.byteLength, size);
  t.is(whole.code, 0);
});

test("execToEnd's bound cancels a command that prints more", async (t) => {
  const command = await exec(t, { args: ["cat", "/dev/zero"] });
  const err = await t.throwsAsync(execToEnd(command, { maxBytes: 1024 * 1024 }), { instanceOf: VmctlError });
  t.is(err.code, "RESOURCE_EXHAUSTED");
  t.deepEqual(await command.exited, { code: null, signal: "SIGKILL" }, "cancelled, so killed");
});
