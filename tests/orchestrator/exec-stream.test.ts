// Exec as a stream, end to end through vmctld on a real target (oci: runc): the client's
// ExecProcess and the CLI's `vmctl exec` with pipes, a terminal and signals. What must
// hold: stdout and stderr kept apart, stdin passed through and ended, a terminal of the
// asked size that follows resizes, signals reaching the command, the command ending with
// the call, and output far beyond gRPC's 4 MiB message limit streamed at the reader's
// pace — never held whole by vmctld.
import test from "ava";
import { spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import type { ExecOutput, ExecProcess, VmctlClient, VmctlError } from "@vmctl/client";
import { execToEnd } from "@vmctl/core/target-kit";
import { CLI_BIN, Daemon, sandbox, teardown, until, vmctl, vmctlLive, type Sandbox } from "./helpers/sandbox.js";

let sb: Sandbox;
let daemon: Daemon;
let client: VmctlClient;
const SERVICE = "shell";

test.before(async () => {
  sb = sandbox("vmctl-e2e-exec-stream-");
  daemon = await Daemon.start(sb);
  client = daemon.client;
  const started = await vmctl(sb, ["run", "-d", "--name", SERVICE, sb.rootfs, "--", "sleep", "3600"]);
  if (started.code !== 0) throw new Error(`could not start the service: ${started.stderr}`);
});
test.after.always(async () => {
  await teardown(sb, [daemon]);
});

const text = (data: Uint8Array): string => Buffer.from(data).toString("utf8");

/** Reads `exec`'s stdout until it contains `wanted`; returns the iterator to go on with. */
async function readUntil(output: AsyncIterator<ExecOutput>, wanted: RegExp): Promise<string> {
  let seen = "";
  while (!wanted.test(seen)) {
    const next = await output.next();
    if (next.done) throw new Error(`output ended before ${wanted}: ${JSON.stringify(seen)}`);
    seen += text(next.value.data);
  }
  return seen;
}

/** Pids on this host whose command line contains `marker` (a command inside a container is a host process). */
function hostPidsWith(marker: string): number[] {
  const found = spawnSync("pgrep", ["-f", marker], { encoding: "utf8" });
  return found.stdout
    .split("\n")
    .filter(Boolean)
    .map(Number)
    .filter((pid) => pid !== process.pid);
}

function rssKiB(pid: number): number {
  return Number(/^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? Number.NaN);
}

test.serial("the client's exec keeps stdout and stderr apart, passes stdin and its end, and reports the exit", async (t) => {
  const result = await execToEnd(await client.exec(SERVICE, { args: ["sh", "-c", "echo out; echo err >&2; exit 5"] }));
  t.deepEqual({ code: result.code, stdout: text(result.stdout), stderr: text(result.stderr) }, { code: 5, stdout: "out\n", stderr: "err\n" });

  const cat = await client.exec(SERVICE, { args: ["cat"], stdin: true });
  await cat.write(Buffer.from("line one\n"));
  await cat.write(Buffer.from("é and \u0000 bytes\n"));
  await cat.closeStdin();
  const echoed = await execToEnd(cat);
  t.is(echoed.code, 0);
  t.is(text(echoed.stdout), "line one\né and \u0000 bytes\n");

  const missing = await execToEnd(await client.exec(SERVICE, { args: ["no-such-command-here"] }));
  t.is(missing.code, 127);
  t.regex(text(missing.stderr), /no-such-command-here/);
});

test.serial("a terminal has the asked size, follows resizes, and merges the output", async (t) => {
  const exec = await client.exec(SERVICE, {
    args: ["sh", "-c", "stty size; echo to-stderr >&2; read line; stty size"],
    tty: true,
    stdin: true,
    size: { rows: 30, cols: 100 },
  });
  const output = exec[Symbol.asyncIterator]();
  t.regex(await readUntil(output, /to-stderr/), /30 100/);
  await exec.resize({ rows: 50, cols: 132 });
  await exec.write(Buffer.from("\n"));
  t.regex(await readUntil(output, /50 132/), /50 132/);
  for (let next = await output.next(); !next.done; next = await output.next()) t.is(next.value.stream, "stdout", "a terminal has one stream");
  t.deepEqual(await exec.exited, { code: 0 });
});

test.serial("signals reach the command; an unknown signal is refused naming the field; cancel and a client gone end it", async (t) => {
  const term = await client.exec(SERVICE, { args: ["sh", "-c", "trap 'echo got-term; exit 9' TERM; echo ready; while :; do sleep 0.05; done"] });
  const output = term[Symbol.asyncIterator]();
  await readUntil(output, /ready/);
  await term.signal("TERM");
  t.regex(await readUntil(output, /got-term/), /got-term/);
  while (!(await output.next()).done);
  t.deepEqual(await term.exited, { code: 9 });

  const bad = await client.exec(SERVICE, { args: ["sleep", "301"] });
  await bad.signal("SIGNOPE").catch(() => undefined);
  const refused = await t.throwsAsync<VmctlError>(execToEnd(bad));
  t.is(refused?.code, "INVALID_ARGUMENT");
  t.is(refused?.details.field, "signal");
  await until("the refused call's command to end", () => hostPidsWith("sleep 301").length === 0);

  const cancelled = await client.exec(SERVICE, { args: ["sleep", "302"] });
  await until("the command to run", () => hostPidsWith("sleep 302").length > 0);
  cancelled.cancel();
  await until("a cancelled command to end", () => hostPidsWith("sleep 302").length === 0);
  t.is((await t.throwsAsync<VmctlError>(cancelled.exited))?.code, "CANCELLED");

  const abort = new AbortController();
  await client.exec(SERVICE, { args: ["sleep", "303"] }, { signal: abort.signal });
  await until("the command to run", () => hostPidsWith("sleep 303").length > 0);
  abort.abort();
  await until("a command whose client went away to end", () => hostPidsWith("sleep 303").length === 0);
});

test.serial("output far past the 4 MiB message limit streams at the reader's pace: vmctld never holds it", async (t) => {
  const total = 256 * 1024 * 1024;
  const exec: ExecProcess = await client.exec(SERVICE, { args: ["head", "-c", String(total), "/dev/zero"] });
  const output = exec[Symbol.asyncIterator]();
  let read = (await output.next()).value?.data.byteLength ?? 0;
  const before = rssKiB(daemon.pid);
  // A reader that stops: whatever vmctld buffered on our behalf shows in its memory.
  await sleep(3000);
  const grown = rssKiB(daemon.pid) - before;
  t.true(grown < 64 * 1024, `vmctld grew by ${grown} KiB while the reader paused (the output is ${total / 1024} KiB)`);
  for (let next = await output.next(); !next.done; next = await output.next()) read += next.value.data.byteLength;
  t.is(read, total);
  t.deepEqual(await exec.exited, { code: 0 });
});

test.serial("vmctl exec: streams kept apart, the exit code, stdin with -i, 127 for a missing command, 128+N for a signal", async (t) => {
  const plain = await vmctl(sb, ["exec", SERVICE, "--", "sh", "-c", "echo out; echo err >&2; exit 7"]);
  t.deepEqual(plain, { code: 7, stdout: "out\n", stderr: "err\n" });

  const piped = await vmctl(sb, ["exec", "-i", SERVICE, "--", "sh", "-c", "wc -c; cat"], { stdin: "abc" });
  t.is(piped.code, 0, piped.stderr);
  t.is(piped.stdout.trim(), "3");

  const missing = await vmctl(sb, ["exec", SERVICE, "--", "no-such-command-here"]);
  t.is(missing.code, 127);
  t.regex(missing.stderr, /no-such-command-here/);

  const killed = await vmctl(sb, ["exec", SERVICE, "--", "sh", "-c", "kill -KILL $$"]);
  t.is(killed.code, 137, killed.stderr);

  const big = spawnSync(process.execPath, [CLI_BIN, "exec", SERVICE, "--", "head", "-c", "50000000", "/dev/zero"], { env: sb.env, maxBuffer: 64 * 1024 * 1024 });
  t.is(big.status, 0, String(big.stderr));
  t.is(big.stdout.byteLength, 50_000_000);
});

test.serial("Ctrl-C on vmctl exec reaches the command, which decides; a second one ends it", async (t) => {
  const polite = vmctlLive(sb, ["exec", SERVICE, "--", "sh", "-c", "trap 'echo got-int; exit 9' INT; echo ready; while :; do sleep 0.05; done"]);
  await until("the command to be ready", () => polite.output().includes("ready"));
  polite.child.kill("SIGINT");
  const result = await polite.done;
  t.is(result.code, 9, result.stderr);
  t.regex(result.stdout, /got-int/);

  const stubborn = vmctlLive(sb, ["exec", SERVICE, "--", "sh", "-c", "trap '' INT; echo ready; exec sleep 304"]);
  await until("the command to be ready", () => stubborn.output().includes("ready"));
  stubborn.child.kill("SIGINT");
  await sleep(300);
  t.true(hostPidsWith("sleep 304").length > 0, "the command ignores SIGINT");
  stubborn.child.kill("SIGINT");
  const ended = await stubborn.done;
  t.not(ended.code, 0);
  await until("the command to end after the second Ctrl-C", () => hostPidsWith("sleep 304").length === 0);
});

test.serial("vmctl exec -it on a real terminal: raw mode here, a terminal there with our size", async (t) => {
  // script(1) gives vmctl a terminal of 40x120 as its stdin and stdout, as a user's would be.
  // runc sizes its terminal just after the command starts: the size is asked until it is set.
  const sizeOnceSet = 'i=0; while s=$(stty size 2>/dev/null); [ -z "$s" ] || [ "$s" = "0 0" ]; do i=$((i+1)); [ $i -gt 100 ] && break; sleep 0.05; done; echo "$s"';
  const cli = `stty rows 40 cols 120; ${process.execPath} ${CLI_BIN} exec -it ${SERVICE} -- sh -c 'tty; ${sizeOnceSet}; read line; echo "got:$line"'`;
  const child = spawn("script", ["-qec", cli, "/dev/null"], { env: sb.env, stdio: ["pipe", "pipe", "pipe"] });
  let seen = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (seen += d));
  await until("the remote terminal's size", () => /40 120/.test(seen), 20_000).catch((err: Error) => {
    throw new Error(`${err.message}; the terminal showed ${JSON.stringify(seen)}`);
  });
  child.stdin.write("typed\r");
  const code = await new Promise<number | null>((resolve) => child.once("close", resolve));
  t.is(code, 0, seen);
  t.regex(seen, /\/dev\/pts\/\d+/);
  t.regex(seen, /got:typed/);
});
