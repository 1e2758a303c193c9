import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { consoleExcerpt, fullSignalName, workloadExit } from "./workload-exit.js";

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

test("a signal's name is the full one, as the agent may leave the SIG off", (t) => {
  t.is(fullSignalName("KILL"), "SIGKILL");
  t.is(fullSignalName("SIGTERM"), "SIGTERM");
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
