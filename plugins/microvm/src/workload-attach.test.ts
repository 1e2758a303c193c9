// An orchestrator restart under a running image VM's workload, against the real vmctl-agent
// outside any VM (agent/testing.ts): the first orchestrator's connection goes, the workload
// prints on, a new one attaches (what adopt() does): the logs go on where they stopped with
// nothing lost or repeated, and the exit is the workload's own. Through a real VM and a
// real restart: the conformance kit's adopt checks, run through the nested host.
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import anyTest, { type TestFn } from "ava";
import { AgentConnection } from "./agent/index.js";
import { startAgent, type RunningAgent } from "./agent/testing.js";
import { serviceFor, vmAgent } from "./testing/agent-workload.js";

const test = anyTest as TestFn<{ agent: RunningAgent; dir: string }>;

test.beforeEach(async (t) => {
  t.context.agent = await startAgent();
  t.context.dir = mkdtempSync(join(tmpdir(), "vmctl-mvm-workload-attach-"));
});
test.afterEach.always(async (t) => {
  await t.context.agent?.stop();
  rmSync(t.context.dir, { recursive: true, force: true });
});

/** Waits until `file` holds `text`. */
async function untilIn(file: string, text: string): Promise<void> {
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; await sleep(20)) {
    if (existsSync(file) && readFileSync(file, "utf8").includes(text)) return;
  }
  throw new Error(`${file} never held ${JSON.stringify(text)}`);
}

test("a new orchestrator attaches to the running workload: its logs go on where they stopped, nothing lost, and its exit is the workload's", async (t) => {
  const { agent, dir } = t.context;
  // Nothing to attach to before a workload runs.
  const early = serviceFor(dir, "early");
  t.false(await early.workload.attach(new AgentConnection(agent.socketPath), vmAgent([], [])));

  // Past USR1 it prints ~100 KiB, more than the pipes hold, while nobody listens.
  const script = "trap 'go=1' USR1; echo first; while [ -z \"$go\" ]; do sleep 0.05; done; i=0; while [ $i -lt 10000 ]; do echo line-$i; i=$((i+1)); done; echo last >&2; exit 5";
  const vm = vmAgent(["sh", "-c", script], []);
  const first = serviceFor(dir, "attached");
  await first.workload.startWorkload(new AgentConnection(agent.socketPath), vm);
  await untilIn(first.layout.stdoutFile, "first\n");
  // The first orchestrator goes (its connection closes); the workload is told to go on.
  await first.workload.disconnect();
  await agent.connection.signal("workload", "USR1", { timeoutMs: 5000 });
  await sleep(300);

  const second = serviceFor(dir, "attached");
  t.true(await second.workload.attach(new AgentConnection(agent.socketPath), vm));
  const exit = await second.exited;
  t.like(exit, { code: 5, reason: "exited" });
  const lines = Array.from({ length: 10000 }, (_, i) => `line-${i}\n`).join("");
  t.is(readFileSync(second.layout.stdoutFile, "utf8"), `first\n${lines}`, "one log, nothing lost or repeated across the restart");
  t.is(readFileSync(second.layout.stderrFile, "utf8"), "last\n");
  await second.workload.disconnect();
});
