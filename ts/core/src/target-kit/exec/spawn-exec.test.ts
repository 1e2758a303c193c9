// spawnExec against real host commands (sh, cat, head, stty) on real pipes and a real
// pseudo-terminal from the native addon.
import { readFileSync } from "node:fs";
import test from "ava";
import type { ExecOutput, ExecProcess, ExecRequest } from "../../contract/target.js";
import { VmctlError } from "../../errors.js";
import { argvOf, childrenOf, pidRunning } from "../process.js";
import { waitFor } from "../supervision/wait.js";
import { execToEnd } from "./collect.js";
import { spawnExec, type SpawnExecOptions } from "./spawn-exec.js";
import { loadPtyAddon } from "./spawn-exec-terminal.js";

/** Runs `args` on the host (the command line is the request's own). */
function run(request: ExecRequest, options: Partial<SpawnExecOptions> = {}): Promise<ExecProcess> {
  return spawnExec({ request, argv: request.args, ...options });
}

function sh(script: string): string[] {
  return ["sh", "-c", script];
}

/** Reads one process's output as text, a piece at a time, with one iterator. */
class Reader {
  readonly #it: AsyncIterator<ExecOutput>;
  readonly streams = new Set<string>();
  text = "";

  constructor(p: ExecProcess) {
    this.#it = p[Symbol.asyncIterator]();
  }

  /** Reads until the text so far matches `re`; returns the match. */
  async until(re: RegExp): Promise<RegExpMatchArray> {
    for (;;) {
      const m = this.text.match(re);
      if (m) return m;
      const r = await this.#it.next();
      if (r.done) throw new Error(`output ended before ${re}: ${JSON.stringify(this.text)}`);
      this.streams.add(r.value.stream);
      this.text += Buffer.from(r.value.data).toString();
    }
  }

  async rest(): Promise<string> {
    for (let r = await this.#it.next(); !r.done; r = await this.#it.next()) {
      this.streams.add(r.value.stream);
      this.text += Buffer.from(r.value.data).toString();
    }
    return this.text;
  }
}

const text = (b: Uint8Array) => Buffer.from(b).toString();

test("stdout and stderr come apart, with the exit code", async (t) => {
  const r = await execToEnd(await run({ args: sh("echo out; echo err >&2; echo more; exit 3") }));
  t.is(r.code, 3);
  t.is(r.signal, undefined);
  t.is(text(r.stdout), "out\nmore\n");
  t.is(text(r.stderr), "err\n");
});

test("a command killed by a signal exits with no code and the signal's name", async (t) => {
  const p = await run({ args: sh("echo ready; exec sleep 100") });
  const out = new Reader(p);
  await out.until(/ready/);
  await p.signal("SIGTERM");
  await out.rest();
  t.deepEqual(await p.exited, { code: null, signal: "SIGTERM" });
});

test("stdin: what is written comes back through cat, and closing it ends cat", async (t) => {
  const p = await run({ args: ["cat"], stdin: true });
  const out = new Reader(p);
  await p.write(Buffer.from("hello "));
  await out.until(/hello /);
  await p.write(Buffer.from("world\n"));
  await p.closeStdin();
  await p.closeStdin(); // idempotent
  t.is(await out.rest(), "hello world\n");
  t.deepEqual(await p.exited, { code: 0 });
  await t.throwsAsync(p.write(Buffer.from("late")), { instanceOf: VmctlError, message: /stdin is closed/ });
});

test("without stdin the command reads an empty stdin, and write is refused", async (t) => {
  const p = await run({ args: ["cat"] });
  const err = await t.throwsAsync(p.write(Buffer.from("x")), { instanceOf: VmctlError });
  t.is(err?.code, "FAILED_PRECONDITION");
  const r = await execToEnd(p);
  t.is(r.code, 0);
  t.is(r.stdout.byteLength, 0);
});

/** Bytes a process has written so far (/proc/PID/io wchar); `all` once it has ended. */
function bytesWritten(pid: number, all: number): number {
  try {
    return Number(/^wchar: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, "utf8"))?.[1]);
  } catch {
    return all; // it wrote everything and exited
  }
}

test("a slow reader slows the command: what it wrote ahead of the reader stays bounded", async (t) => {
  const total = 64 * 1024 * 1024;
  const p = await run({ args: ["head", "-c", String(total), "/dev/zero"] });
  const head = childrenOf(process.pid).find((pid) => argvOf(pid)?.[2] === String(total));
  t.truthy(head, "the head process is this process's child");
  const it = p[Symbol.asyncIterator]();
  let read = (await it.next()).value!.data.byteLength;
  // Were the output read ahead of the reader, head would write its 64 MiB in well under this.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const ahead = bytesWritten(head!, total) - read;
  t.log(`head wrote ${ahead} bytes ahead of the reader`);
  t.true(ahead < 2 * 1024 * 1024, `head wrote ${ahead} bytes ahead of a reader that stopped`);
  // A few more slow reads: still bounded.
  for (let i = 0; i < 10; i++) {
    read += (await it.next()).value!.data.byteLength;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  t.true(bytesWritten(head!, total) - read < 2 * 1024 * 1024);
  for (let r = await it.next(); !r.done; r = await it.next()) read += r.value.data.byteLength;
  t.is(read, total);
  t.deepEqual(await p.exited, { code: 0 });
});

/** Whether `promise` settles within `ms`. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  promise.catch(() => undefined);
  const timeout = new Promise<false>((resolve) => setTimeout(() => resolve(false), ms));
  return Promise.race([promise.then(() => true, () => true), timeout]);
}

for (const tty of [false, true]) {
  test(`write waits while the command does not read its input${tty ? " (tty)" : ""}, without blocking the event loop`, async (t) => {
    // A cooked terminal drops input past a line's 4 KiB; a raw one fills and stops taking it.
    const p = await run({ args: sh("stty raw -echo 2>/dev/null; echo ready; exec sleep 1000"), stdin: true, tty });
    await new Reader(p).until(/ready/);
    const big = new Uint8Array(4 * 1024 * 1024);
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 10);
    const write = p.write(big);
    t.false(await settlesWithin(write, 500), "4 MiB cannot fit in a pipe or terminal nobody reads");
    clearInterval(ticker);
    t.true(ticks > 20, `the event loop ran (${ticks} ticks)`);
    p.cancel();
    await t.throwsAsync(write, { instanceOf: VmctlError });
    t.deepEqual(await p.exited, { code: null, signal: "SIGKILL" });
  });
}

test("tty: a slow reader slows the command too", async (t) => {
  const total = 64 * 1024 * 1024;
  const p = await run({ args: ["head", "-c", String(total), "/dev/zero"], tty: true });
  const head = childrenOf(process.pid).find((pid) => argvOf(pid)?.includes(String(total)));
  t.truthy(head);
  const it = p[Symbol.asyncIterator]();
  let read = (await it.next()).value!.data.byteLength;
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const ahead = bytesWritten(head!, total) - read;
  t.log(`head wrote ${ahead} bytes ahead of the reader`);
  t.true(ahead < 2 * 1024 * 1024, `head wrote ${ahead} bytes ahead of a reader that stopped`);
  for (let r = await it.next(); !r.done; r = await it.next()) read += r.value.data.byteLength;
  t.is(read, total);
  t.deepEqual(await p.exited, { code: 0 });
});

test("cancel kills the command and what it started, and ends the output", async (t) => {
  const p = await run({ args: sh("sleep 1000 & echo $!; wait") });
  const out = new Reader(p);
  const sleeper = Number((await out.until(/^(\d+)\n/))[1]);
  t.true(pidRunning(sleeper));
  p.cancel();
  p.cancel(); // idempotent
  t.deepEqual(await p.exited, { code: null, signal: "SIGKILL" });
  t.true(await waitFor(() => !pidRunning(sleeper) || undefined, { timeoutMs: 2000, pollMs: 10 }), "the background sleep is dead too");
  await out.rest(); // ended
});

test("the exit hook sees a bounded tail of stderr and decides the exit", async (t) => {
  let tail = "";
  const script = 'i=0; while [ $i -lt 2000 ]; do echo "line $i" >&2; i=$((i+1)); done; echo "the reason" >&2; exit 255';
  const p = await run(
    { args: sh(script) },
    {
      mapExit: (exit, stderrTail) => {
        tail = stderrTail;
        return { code: exit.code === 255 && /the reason/.test(stderrTail) ? 127 : exit.code };
      },
    },
  );
  const r = await execToEnd(p);
  t.is(r.code, 127);
  t.true(tail.length <= 4096 && tail.length > 4000, `tail of ${tail.length} bytes`);
  t.true(tail.endsWith("line 1999\nthe reason\n"));
  const all = Array.from({ length: 2000 }, (_, i) => `line ${i}\n`).join("") + "the reason\n";
  t.is(text(r.stderr), all, "the reader still gets all of stderr");
});

test("requests are checked: empty args, a bad size, an unknown signal; output is read once", async (t) => {
  const empty = await t.throwsAsync(run({ args: [] }), { instanceOf: VmctlError });
  t.is(empty?.code, "INVALID_ARGUMENT");
  t.is(empty?.details.field, "args");
  const size = await t.throwsAsync(run({ args: ["true"], tty: true, size: { rows: 0, cols: 80 } }), { instanceOf: VmctlError });
  t.is(size?.code, "INVALID_ARGUMENT");
  const p = await run({ args: ["true"] });
  const signal = await t.throwsAsync(p.signal("SIGNOPE"), { instanceOf: VmctlError });
  t.is(signal?.code, "INVALID_ARGUMENT");
  t.deepEqual((await execToEnd(p)).code, 0);
  t.throws(() => p[Symbol.asyncIterator](), { instanceOf: VmctlError, message: /read once/ });
  await p.signal("SIGTERM"); // after the end: nothing to signal, not an error
});

test("a command line that cannot start rejects exec", async (t) => {
  const err = await t.throwsAsync(spawnExec({ request: { args: ["x"] }, argv: ["/no/such/runtime"] }), { instanceOf: VmctlError });
  t.is(err?.code, "NOT_FOUND");
});

test("tty: the command runs on a new terminal of the requested size, all output is stdout, resize reaches it", async (t) => {
  const p = await run({ args: sh("tty; echo to-stderr >&2; stty size; read x; stty size"), tty: true, size: { rows: 30, cols: 100 } });
  const out = new Reader(p);
  await out.until(/\/dev\/pts\/\d+\r?\n/);
  await out.until(/30 100\r?\n/);
  t.regex(out.text, /to-stderr/);
  await p.resize({ rows: 40, cols: 120 });
  await p.write(Buffer.from("\n"));
  await out.until(/40 120\r?\n/);
  await out.rest();
  t.deepEqual([...out.streams], ["stdout"]);
  t.deepEqual(await p.exited, { code: 0 });
});

test("tty: input is the terminal's, ^D (closeStdin) ends it, and signals reach the command", async (t) => {
  const cat = await run({ args: ["cat"], tty: true });
  const out = new Reader(cat);
  await cat.write(Buffer.from("typed\n"));
  await out.until(/typed\r\n.*typed\r\n/s); // the terminal's echo, then cat's copy
  await cat.closeStdin();
  await out.rest();
  t.deepEqual(await cat.exited, { code: 0 });

  const trap = await run({ args: sh("trap 'echo got INT; exit 5' INT; echo ready; while :; do sleep 0.05; done"), tty: true });
  const trapOut = new Reader(trap);
  await trapOut.until(/ready/);
  await trap.signal("SIGINT");
  await trapOut.until(/got INT/);
  await trapOut.rest();
  t.deepEqual(await trap.exited, { code: 5 });
});

test("tty: cancel kills the command and frees the terminal", async (t) => {
  const p = await run({ args: sh("echo $$; exec sleep 1000"), tty: true });
  const out = new Reader(p);
  const pid = Number((await out.until(/^(\d+)\r\n/))[1]);
  p.cancel();
  t.deepEqual(await p.exited, { code: null, signal: "SIGKILL" });
  t.false(pidRunning(pid));
  await out.rest();
  await t.throwsAsync(p.write(Buffer.from("x")), { instanceOf: VmctlError, message: /terminal is closed/ });
  await p.resize({ rows: 10, cols: 10 }); // after the end: ignored
});

test("without the native addon, exec with a tty fails with FAILED_PRECONDITION", async (t) => {
  const err = await t.throwsAsync(loadPtyAddon("@vmctl/no-such-addon"), { instanceOf: VmctlError });
  t.is(err?.code, "FAILED_PRECONDITION");
  t.regex(err?.message ?? "", /native addon @vmctl\/no-such-addon/);
});
