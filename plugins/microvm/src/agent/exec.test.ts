// Exec sessions against the real vmctl-agent, outside any VM (see ./testing.ts): what
// the microvm target will do through the guest's vsock, here through a unix socket.
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import anyTest, { type TestFn } from "ava";
import { VmctlError } from "@vmctl/core/contract";
import type { ExecSession } from "./exec-session.js";
import { collect, startAgent, type RunningAgent } from "./testing.js";

const test = anyTest as TestFn<{ agent: RunningAgent }>;

test.before(async (t) => {
  t.context.agent = await startAgent();
});
test.after.always(async (t) => {
  await t.context.agent?.stop();
});

/** Reads a session's output (all streams, as text) until it matches `pattern`; returns all read so far. */
async function readUntil(output: AsyncIterator<{ data: Buffer }>, pattern: RegExp, seen = ""): Promise<string> {
  while (!pattern.test(seen)) {
    const next = await output.next();
    if (next.done) throw new Error(`output ended before it matched ${pattern}: ${JSON.stringify(seen)}`);
    seen += next.value.data.toString();
  }
  return seen;
}

/** Resolves once /proc/<pid> is gone (the agent runs on this host: same PID namespace). */
async function untilGone(pid: number): Promise<boolean> {
  for (let i = 0; i < 100 && existsSync(`/proc/${pid}`); i++) await sleep(20);
  return !existsSync(`/proc/${pid}`);
}

test("info: the agent's version, its pid and no init outside a VM", async (t) => {
  const { connection, child } = t.context.agent;
  const info = await connection.info();
  t.regex(info.version, /^\d+\.\d+\.\d+/);
  t.is(info.pid, child.pid ?? -1);
  t.false(info.init);
  t.true(info.agentStartBoottimeNs > 0);
  t.is(info.workloadExecBoottimeNs, 0);
});

test("stdout and stderr are kept apart, each in order, and the exit code comes last", async (t) => {
  const session = await t.context.agent.connection.exec({ args: ["sh", "-c", "echo out1; echo err1 >&2; echo out2; echo err2 >&2; exit 7"] });
  t.true(typeof session.pid === "number" && session.pid > 0);
  const result = await collect(session);
  t.is(result.stdout, "out1\nout2\n");
  t.is(result.stderr, "err1\nerr2\n");
  t.deepEqual(result.exit, { code: 7, coreDumped: false, oom: false, message: "" });
});

test("exit codes, and deaths by signal reported by the signal's name", async (t) => {
  const { connection } = t.context.agent;
  const run = async (script: string) => (await collect(await connection.exec({ args: ["sh", "-c", script] }))).exit;
  t.is((await run("true")).code, 0);
  t.is((await run("exit 255")).code, 255);
  const term = await run("kill -TERM $$");
  t.is(term.signal, "SIGTERM");
  t.is(term.code, undefined);
  t.is((await run("kill -KILL $$")).signal, "SIGKILL");
});

test("env, cwd and user reach the command", async (t) => {
  const session = await t.context.agent.connection.exec({
    args: ["sh", "-c", 'echo "$A $B $(pwd) $(id -u)"'],
    imageEnv: ["A=image", "B=image"],
    env: ["B=caller"],
    cwd: "/tmp",
    user: "65534",
  });
  t.is((await collect(session)).stdout, "image caller /tmp 65534\n");
});

test("stdin is forwarded in order (1 MiB, more than one message) and closed", async (t) => {
  const session = await t.context.agent.connection.exec({ args: ["sha256sum"], stdin: true });
  const reading = collect(session);
  const data = randomBytes(1024 * 1024 + 17);
  await session.write(data.subarray(0, 5));
  await session.write(data.subarray(5));
  await session.closeStdin();
  const result = await reading;
  t.is(result.stdout.split(" ")[0], createHash("sha256").update(data).digest("hex"));
  t.is(result.exit.code, 0);
  await t.throwsAsync(session.write("late"), { instanceOf: VmctlError, message: /ended/ });
});

test("a pty: the command has a terminal of the size asked, and a resize reaches it", async (t) => {
  const session = await t.context.agent.connection.exec({
    args: ["sh", "-c", "[ -t 0 ] && [ -t 1 ] && echo is-a-tty; stty size; read line; stty size; exit 4"],
    tty: true,
    window: { rows: 30, cols: 100 },
  });
  const output = session[Symbol.asyncIterator]();
  let seen = await readUntil(output, /30 100/);
  t.regex(seen, /is-a-tty/);
  await session.resize(40, 120);
  await session.write("go\n");
  seen = await readUntil(output, /40 120/, seen);
  for (let next = await output.next(); !next.done; next = await output.next()) t.is(next.value.stream, "stdout");
  t.is((await session.exited).code, 4);
});

test("a missing command exits 127 with a message naming it, on stderr too", async (t) => {
  const session = await t.context.agent.connection.exec({ args: ["no-such-command-here", "x"] });
  t.is(session.pid, undefined);
  const result = await collect(session);
  t.is(result.exit.code, 127);
  t.regex(result.exit.message, /no-such-command-here: command not found/);
  t.regex(result.stderr, /no-such-command-here/);
  t.is(result.stdout, "");
});

test("a signal reaches a running exec: through its session, and by pid", async (t) => {
  const { connection } = t.context.agent;
  const trapping = await connection.exec({ args: ["sh", "-c", 'trap "echo got-term; exit 3" TERM; echo ready; while :; do sleep 0.05; done'] });
  const output = trapping[Symbol.asyncIterator]();
  await readUntil(output, /ready/);
  await trapping.signal("TERM");
  await readUntil(output, /got-term/);
  while (!(await output.next()).done);
  t.is((await trapping.exited).code, 3);

  const sleeping = await connection.exec({ args: ["sleep", "60"] });
  const reading = collect(sleeping);
  await connection.signal(sleeping.pid!, "SIGKILL");
  t.is((await reading).exit.signal, "SIGKILL");
});

test("a signal for a process the agent did not start is refused as a VmctlError", async (t) => {
  const err = await t.throwsAsync(t.context.agent.connection.signal(1, "TERM"), { instanceOf: VmctlError });
  t.true(["NOT_FOUND", "FAILED_PRECONDITION"].includes(err.code), err.code);
  const bad = await t.throwsAsync(t.context.agent.connection.signal("workload", "NOT-A-SIGNAL"), { instanceOf: VmctlError });
  t.is(bad.code, "INVALID_ARGUMENT");
});

test("a start the agent refuses is an INVALID_ARGUMENT from exec() itself", async (t) => {
  const err = await t.throwsAsync(t.context.agent.connection.exec({ args: [] }), { instanceOf: VmctlError });
  t.is(err.code, "INVALID_ARGUMENT");
  t.regex(err.message, /args/);
});

test("several execs at once, each with its own output and exit", async (t) => {
  const { connection } = t.context.agent;
  const started = Date.now();
  const sessions: ExecSession[] = await Promise.all(
    [1, 2, 3, 4, 5, 6].map((n) => connection.exec({ args: ["sh", "-c", `sleep 0.5; echo session-${n}; echo e${n} >&2; exit ${n}`] })),
  );
  const results = await Promise.all(sessions.map(collect));
  results.forEach((result, i) => {
    t.is(result.stdout, `session-${i + 1}\n`);
    t.is(result.stderr, `e${i + 1}\n`);
    t.is(result.exit.code, i + 1);
  });
  // Six half-second commands one after another would take 3 s.
  t.true(Date.now() - started < 2500, `${Date.now() - started} ms`);
});

test("cancel() ends the call and the agent kills the command; exited rejects with CANCELLED", async (t) => {
  const session = await t.context.agent.connection.exec({ args: ["sh", "-c", "echo up; exec sleep 60"] });
  const pid = session.pid!;
  const output = session[Symbol.asyncIterator]();
  await readUntil(output, /up/);
  session.cancel();
  t.true((await output.next()).done);
  const err = await t.throwsAsync(session.exited, { instanceOf: VmctlError });
  t.is(err.code, "CANCELLED");
  t.true(await untilGone(pid), `pid ${pid} still runs`);
});

test("a reader that stops early ends the exec too", async (t) => {
  const session = await t.context.agent.connection.exec({ args: ["sh", "-c", "echo first; exec sleep 60"] });
  for await (const chunk of session) {
    t.is(chunk.data.toString(), "first\n");
    break;
  }
  t.true(await untilGone(session.pid!), `pid ${session.pid} still runs`);
  await t.throwsAsync(session.exited, { instanceOf: VmctlError, message: /[Cc]ancel/ });
});
