import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { collectOutput, consoleExcerpt, execResult, workloadExit } from "./workload-exit.js";

const at = new Date(0);
const facts = { coreDumped: false, oom: false, message: "" };

test("the workload's exit is the service's: code, signal (stopped when asked), oom, a command that could not run", (t) => {
  t.deepEqual(workloadExit({ ...facts, code: 7 }, false, at), { code: 7, reason: "exited", at });
  t.deepEqual(workloadExit({ ...facts, code: 0 }, true, at), { code: 0, reason: "exited", at }, "a workload that handled SIGTERM chose its code");
  t.like(workloadExit({ ...facts, signal: "SIGTERM" }, true, at), { code: null, signal: "SIGTERM", reason: "stopped" });
  t.like(workloadExit({ ...facts, signal: "KILL" }, false, at), { code: null, signal: "SIGKILL", reason: "exited" });
  t.like(workloadExit({ ...facts, oom: true, signal: "SIGKILL" }, false, at), { code: null, signal: "SIGKILL", reason: "oom" });
  const missing = workloadExit({ ...facts, code: 127, message: "vmctl-agent: nosuch: command not found" }, false, at);
  t.like(missing, { code: 127, reason: "failed", detail: "vmctl-agent: nosuch: command not found" });
});

test("exec's result: the code, and the agent's message as stderr when the command could not run", async (t) => {
  async function* chunks() {
    yield { stream: "stdout" as const, data: Buffer.from("a".repeat(10)) };
    yield { stream: "stderr" as const, data: Buffer.from("e") };
    yield { stream: "stdout" as const, data: Buffer.from("b".repeat(10)) };
  }
  const out = await collectOutput(chunks(), 15);
  t.is(out.stdout.toString(), "a".repeat(10) + "b".repeat(5));
  t.is(out.stderr.toString(), "e");
  t.true(out.truncated);
  t.deepEqual(execResult({ ...facts, code: 3 }, out), { code: 3, stdout: out.stdout, stderr: out.stderr });
  const none = { stdout: Buffer.alloc(0), stderr: Buffer.alloc(0) };
  t.is(Buffer.from(execResult({ ...facts, code: 127, message: "vmctl-agent: x: command not found" }, none).stderr).toString(), "vmctl-agent: x: command not found\n");
  t.is(execResult({ ...facts, signal: "SIGKILL" }, none).code, null);
});

test("the console excerpt starts at the agent's first message or the panic, else it is the tail", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "vmctl-excerpt-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "console.log");
  t.is(consoleExcerpt(file), "");
  writeFileSync(file, ["boot 1", "boot 2", "boot 3", "vmctl-agent: init: mount /dev/vda: EINVAL", "Kernel panic - not syncing: Attempted to kill init!", ...Array.from({ length: 40 }, (_, i) => `trace ${i}`)].join("\r\n"));
  const excerpt = consoleExcerpt(file, 5).split("\n");
  t.deepEqual(excerpt, ["boot 2", "boot 3", "vmctl-agent: init: mount /dev/vda: EINVAL", "Kernel panic - not syncing: Attempted to kill init!", "trace 0"]);
  writeFileSync(file, Array.from({ length: 30 }, (_, i) => `line ${i}`).join("\n"));
  t.deepEqual(consoleExcerpt(file, 2).split("\n"), ["line 28", "line 29"]);
});
