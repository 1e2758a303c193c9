// The kit's supervision with real processes: a shim running sh commands, read back by a
// second supervisor as adopt() would after an orchestrator restart.
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import type { ExitInfo, LogChunk, Logger, ServiceState } from "../../contract/index.js";
import { argvOf, childrenOf, isAlive, pidRunning, startTimeOf } from "../process.js";
import { isShim } from "./shim.js";
import { ShimSupervisor, type ShimEnd } from "./shim-supervisor.js";
import { readStopRecord } from "./stop-record.js";
import { terminateChild, terminateProcess } from "./escalation.js";
import { waitFor } from "./wait.js";

const root = mkdtempSync(join(tmpdir(), "vmctl-supervision-"));
test.after.always(() => rmSync(root, { recursive: true, force: true }));

class Lines implements Logger {
  readonly lines: string[] = [];
  debug(): void {}
  info(message: string): void {
    this.lines.push(message);
  }
  warn(message: string): void {
    this.lines.push(message);
  }
  error(message: string): void {
    this.lines.push(message);
  }
}

/** A minimal target on the supervisor: the workload is the shim's child, signalled directly. */
class ShellService {
  readonly shim: ShimSupervisor;
  readonly log = new Lines();

  constructor(
    readonly dir: string,
    tag: string,
    startRequested = false,
  ) {
    mkdirSync(dir, { recursive: true });
    const f = (name: string) => join(dir, name);
    this.shim = new ShimSupervisor({
      identity: { name: "vmctl-test-shim", tag },
      files: { runDir: dir, pidFile: f("shim.pid"), stdoutFile: f("out"), stderrFile: f("err"), exitFile: f("exit"), stopFile: f("stop.json") },
      log: this.log,
      startRequested,
      workload: {
        state: () => this.state(),
        started: () => this.shim.launched(),
        deliver: async (signal) => {
          const pid = this.shim.pid();
          for (const child of pid === undefined ? [] : childrenOf(pid)) process.kill(child, signal);
        },
        unpause: async () => undefined,
      },
    });
  }

  async state(): Promise<ServiceState> {
    const view = this.shim.view();
    if (view.kind === "exited") return view.state;
    if (view.kind === "created") return { phase: "created", since: new Date() };
    if (view.kind === "ended") return this.shim.exited(exitOf(view.end));
    if (!view.shimAlive) return this.shim.exited(exitOf(this.shim.lostEnd()));
    return { phase: view.stopping ? "stopping" : "running", since: new Date() };
  }
}

/** The shim's command once it is `sleep` (exec'd: a signal then reaches sleep itself). */
function sleeperOf(shimPid: number): Promise<number | undefined> {
  return waitFor(() => childrenOf(shimPid).find((pid) => argvOf(pid)?.[0] === "sleep"), { pollMs: 5, timeoutMs: 5000 });
}

function exitOf(end: ShimEnd): ExitInfo {
  if (end.status === undefined) return { code: null, reason: "unknown", detail: "status lost", at: end.at };
  return { code: end.status, reason: end.stopSignals.length > 0 ? "stopped" : "exited", at: end.at };
}

async function text(chunks: AsyncIterable<LogChunk>): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for await (const c of chunks) out[c.stream] = (out[c.stream] ?? "") + Buffer.from(c.data).toString("utf8");
  return out;
}

test("a shim runs its command with output to files, records the status, and wait() and logs() read them", async (t) => {
  const svc = new ShellService(join(root, "plain"), "svc-plain");
  t.is((await svc.state()).phase, "created");
  t.false(svc.shim.settled());
  const ref = svc.shim.launch(["/bin/sh", "-c", "echo out; echo err >&2; exit 3"]);
  t.true(svc.shim.settled());
  const exit = await svc.shim.wait();
  t.is(exit.code, 3);
  t.is(exit.reason, "exited");
  t.deepEqual(await text(svc.shim.logs()), { stdout: "out\n", stderr: "err\n" });
  await svc.shim.reap();
  // Ended: running no more (a zombie the test process has not reaped yet, on a busy host, counts as ended).
  t.false(isAlive(ref) && pidRunning(ref.pid), "the shim ends after writing the status");
  // The latch keeps the first exit read.
  t.is((await svc.state()).exit?.code, 3);
});

test("stop: SIGTERM first, SIGKILL once the grace runs out; both recorded, the escalation logged", async (t) => {
  const svc = new ShellService(join(root, "stubborn"), "svc-stubborn");
  svc.shim.launch(["/bin/sh", "-c", "trap '' TERM; echo ready; exec sleep 30"]);
  await waitFor(async () => ((await text(svc.shim.logs())).stdout === "ready\n" ? true : undefined), { pollMs: 10, timeoutMs: 5000 });
  const started = Date.now();
  t.true(await svc.shim.stop(300, async () => undefined));
  t.true(Date.now() - started >= 300, "SIGKILL came only after the grace");
  const exit = await svc.shim.wait();
  t.is(exit.code, 137);
  t.is(exit.reason, "stopped");
  t.deepEqual(readStopRecord(join(svc.dir, "stop.json"))?.signals, ["SIGTERM", "SIGKILL"]);
  t.true(svc.log.lines.some((l) => l.includes("ignored SIGTERM")));
});

test("stop() on a service that never started marks it: start then has nothing to do", async (t) => {
  const svc = new ShellService(join(root, "never"), "svc-never");
  t.true(await svc.shim.stop(1000, async () => undefined));
  t.true(svc.shim.settled());
  t.false(svc.shim.launched());
  t.true(readStopRecord(join(svc.dir, "stop.json"))?.beforeStart);
});

test("a second supervisor on the same files (an orchestrator restart) sees the running shim, stops it and reads its end", async (t) => {
  const dir = join(root, "adopted");
  const first = new ShellService(dir, "svc-adopted");
  const ref = first.shim.launch(["/bin/sh", "-c", "exec sleep 30"]);
  await sleeperOf(ref.pid);
  const second = new ShellService(dir, "svc-adopted", true);
  t.is((await second.state()).phase, "running");
  t.true(isShim(ref.pid, { name: "vmctl-test-shim", tag: "svc-adopted" }));
  t.false(isShim(ref.pid, { name: "vmctl-test-shim", tag: "another" }), "a shim of another service is not ours");
  t.true(await second.shim.stop(5000, async () => undefined));
  const exit = await second.shim.wait();
  t.is(exit.code, 143, "sleep ended by SIGTERM");
  t.is(exit.reason, "stopped");
  await second.shim.reap();
  t.false(isAlive(ref) && pidRunning(ref.pid), "the shim has ended (an unreaped zombie counts as ended)");
});

test("a shim killed before its command ended: the status is lost, and said so", async (t) => {
  const dir = join(root, "lost");
  const svc = new ShellService(dir, "svc-lost");
  const ref = svc.shim.launch(["/bin/sh", "-c", "exec sleep 30"]);
  const sleeper = await sleeperOf(ref.pid);
  process.kill(ref.pid, "SIGKILL");
  const exit = await svc.shim.wait();
  t.is(exit.code, null);
  t.is(exit.reason, "unknown");
  t.not(sleeper, undefined);
  try {
    process.kill(sleeper!, "SIGKILL");
  } catch {
    // ended with its shim
  }
});

test("terminateProcess and terminateChild escalate to SIGKILL for a process that ignores SIGTERM, and stop at SIGTERM otherwise", async (t) => {
  const stubborn = spawn("/bin/sh", ["-c", "trap '' TERM; echo x; exec sleep 30"], { stdio: ["ignore", "pipe", "ignore"] });
  await new Promise((resolve) => stubborn.stdout.once("data", resolve));
  t.true(await terminateChild(stubborn, 200));
  t.is(stubborn.signalCode, "SIGKILL");

  const polite = spawn("/bin/sh", ["-c", "exec sleep 30"], { stdio: "ignore" });
  await waitFor(() => (startTimeOf(polite.pid!) !== undefined ? true : undefined), { pollMs: 5, timeoutMs: 5000 });
  const ref = { pid: polite.pid!, startTime: startTimeOf(polite.pid!)! };
  const exited = new Promise<NodeJS.Signals | null>((resolve) => polite.once("exit", (_code, signal) => resolve(signal)));
  t.true(await terminateProcess(ref, 5000));
  t.is(await exited, "SIGTERM");
  // A recorded process whose pid now names another start time is never signalled.
  t.true(await terminateProcess({ pid: process.pid, startTime: "0" }, 10));
});

test("waitFor gives the first defined answer, or undefined once its time is up", async (t) => {
  let n = 0;
  t.is(await waitFor(() => (++n >= 3 ? n : undefined), { pollMs: 1 }), 3);
  const started = Date.now();
  t.is(await waitFor(() => undefined, { pollMs: 10, timeoutMs: 50 }), undefined);
  t.true(Date.now() - started >= 50);
});
