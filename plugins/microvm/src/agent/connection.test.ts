// The connection's life: an agent that is not there, one that comes up late, and Shutdown.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import test from "ava";
import { VmctlError } from "@vmctl/core/contract";
import { requireAgentBinary } from "../agent-files.js";
import { AgentConnection } from "./connection.js";
import { startAgent } from "./testing.js";

function scratch(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), "vmctl-agent-conn-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test("an agent that is not there: UNAVAILABLE from a call, and from waitReady within its timeout", async (t) => {
  const connection = new AgentConnection(join(scratch(t), "nobody.sock"));
  t.teardown(() => connection.close());
  const call = await t.throwsAsync(connection.info({ timeoutMs: 2000 }), { instanceOf: VmctlError });
  t.is(call.code, "UNAVAILABLE");

  const started = Date.now();
  const wait = await t.throwsAsync(connection.waitReady(700), { instanceOf: VmctlError });
  const took = Date.now() - started;
  t.is(wait.code, "UNAVAILABLE");
  t.regex(wait.message, /nobody\.sock: no answer within 700 ms/);
  t.true(took >= 650 && took < 1500, `${took} ms`);
});

test("waitReady waits for an agent that starts later", async (t) => {
  const dir = scratch(t);
  const socketPath = join(dir, "agent.sock");
  const connection = new AgentConnection(socketPath);
  t.teardown(() => connection.close());
  const ready = connection.waitReady(10_000);
  await sleep(300);
  const child = spawn(requireAgentBinary(), ["--listen", `unix:${socketPath}`, "--no-init"], { stdio: "ignore" });
  t.teardown(() => child.kill("SIGKILL"));
  const info = await ready;
  t.is(info.pid, child.pid ?? -1);
});

test("shutdown is answered, then the agent (outside a VM) exits", async (t) => {
  const agent = await startAgent();
  t.teardown(() => agent.stop());
  const exit = once(agent.child, "exit");
  await agent.connection.shutdown("power-off");
  const [code, signal] = (await exit) as [number | null, string | null];
  t.is(signal, null);
  t.is(code, 0);
  const after = await t.throwsAsync(agent.connection.info({ timeoutMs: 2000 }), { instanceOf: VmctlError });
  t.is(after.code, "UNAVAILABLE");
});
