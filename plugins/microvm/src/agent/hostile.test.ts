// The guest agent's API under generated hostile input (Unicode, control characters, NUL,
// huge strings): every call answers — a clear VmctlError of a caller's kind, or an exec
// that ends — and the agent keeps serving with nothing of a call left running.
import { readFileSync } from "node:fs";
import anyTest, { type TestFn } from "ava";
import fc from "fast-check";
import { VmctlError } from "@vmctl/core/contract";
import { collect, startAgent, type RunningAgent } from "./testing.js";
import type { ExecStart } from "./types.js";

const test = anyTest as TestFn<{ agent: RunningAgent }>;

test.before(async (t) => {
  t.context.agent = await startAgent();
});
test.after.always(async (t) => {
  await t.context.agent?.stop();
});

/** Codes a refusal of hostile input may carry: the caller's fault, never the agent's. */
/** How long one call may take to answer. */
const CALL_TIMEOUT_MS = 10_000;

const CALLER_CODES = new Set(["INVALID_ARGUMENT", "NOT_FOUND", "PERMISSION_DENIED", "FAILED_PRECONDITION", "OUT_OF_RANGE"]);

const hostile = fc.oneof(
  fc.string({ unit: "grapheme", maxLength: 40 }),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.constantFrom("", "\0", "a\0b", "../../..", "/", "\n", "\u202e", "é", "~root", "65534:65534", "-1", "4294967296"),
  fc.string({ minLength: 70_000, maxLength: 70_001 }),
);

/** The agent's children still alive (it runs on this host, in this PID namespace). */
function agentChildren(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").split(" ").filter(Boolean);
  } catch {
    return [];
  }
}

/** One call: it must answer, with an error of the caller's kind or an exit. */
async function answers(t: import("ava").ExecutionContext, what: string, call: () => Promise<unknown>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${CALL_TIMEOUT_MS} ms`)), CALL_TIMEOUT_MS);
  });
  try {
    await Promise.race([call(), late]);
  } catch (err) {
    if (!(err instanceof VmctlError) || !CALLER_CODES.has(err.code)) {
      t.fail(`${what}: ${err instanceof VmctlError ? err.code : "not a VmctlError"}: ${String(err)}`);
      throw err;
    }
  } finally {
    clearTimeout(timer);
  }
}

test.serial("exec with hostile args, env, cwd and user, as a workload or attaching to one: a caller's error or an exit, the agent still serving, nothing left running", async (t) => {
  t.timeout(300_000);
  const { connection, child } = t.context.agent;
  const start = fc.record({
    // Never a command that could be found: a hostile name under a directory that does not
    // exist, or echo with hostile arguments.
    args: fc.oneof(
      hostile.map((name) => [`/nonexistent-vmctl/${name}`]),
      fc.array(hostile, { maxLength: 4 }).map((rest) => ["/bin/echo", ...rest]),
    ),
    env: fc.array(hostile, { maxLength: 3 }),
    imageEnv: fc.array(hostile, { maxLength: 3 }),
    cwd: fc.option(hostile, { nil: undefined }),
    user: fc.option(hostile, { nil: undefined }),
    tty: fc.boolean(),
    // As the VM's workload (--no-init: no power off at its end), or attaching to one.
    workload: fc.boolean(),
    attach: fc.boolean(),
    keepRunning: fc.boolean(),
  });
  await fc.assert(
    fc.asyncProperty(start, async (s) => {
      const request: ExecStart = { ...s, ...(s.cwd === undefined ? {} : { cwd: s.cwd }), ...(s.user === undefined ? {} : { user: s.user }) };
      await answers(t, `exec ${JSON.stringify(request).slice(0, 200)}`, async () => {
        const result = await collect(await connection.exec(request));
        if (result.exit.code === undefined && result.exit.signal === undefined) throw new Error(`no exit: ${JSON.stringify(result.exit)}`);
      });
    }),
    { numRuns: 120 },
  );
  t.regex((await connection.info()).version, /^\d+/, "the agent still serves");
  t.is(child.exitCode, null, "the agent is alive");
  t.deepEqual(agentChildren(child.pid ?? -1), [], "no process of a call is left");
});

test.serial("signal and copy out with hostile names: a caller's error, the agent still serving", async (t) => {
  t.timeout(300_000);
  const { connection, child } = t.context.agent;
  await fc.assert(
    fc.asyncProperty(hostile, hostile, async (name, path) => {
      await answers(t, `signal ${JSON.stringify(name).slice(0, 80)}`, () => connection.signal(4_000_000, name));
      await answers(t, `copyOut ${JSON.stringify(path).slice(0, 80)}`, async () => {
        // A path that exists ("/") may stream: its first chunk is enough, the rest is cancelled.
        for await (const _ of connection.copyOut(path)) break;
      });
    }),
    { numRuns: 120 },
  );
  t.regex((await connection.info()).version, /^\d+/, "the agent still serves");
  t.is(child.exitCode, null, "the agent is alive");
});
