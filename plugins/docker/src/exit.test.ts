// Exit interpretation: Docker's state plus what stop() recorded → ExitInfo.
import test from "ava";
import { interpretExit, signalOf, type ExitEvidence } from "./exit.js";

const at = new Date("2024-01-01T00:00:00Z");
const base: ExitEvidence = { exitCode: 0, started: true, error: "", oomKilled: false, stopSignals: [], at };

test("an exit on its own: code and reason exited", (t) => {
  t.deepEqual(interpretExit({ ...base, exitCode: 7 }), { code: 7, reason: "exited", at });
});

test("after stop(): the signal we sent, or the code the workload chose", (t) => {
  t.deepEqual(interpretExit({ ...base, exitCode: 137, stopSignals: ["SIGTERM", "SIGKILL"] }), { code: null, signal: "SIGKILL", reason: "stopped", at });
  t.deepEqual(interpretExit({ ...base, exitCode: 143, stopSignals: ["SIGTERM"] }), { code: null, signal: "SIGTERM", reason: "stopped", at });
  t.deepEqual(interpretExit({ ...base, exitCode: 0, stopSignals: ["SIGTERM"] }), { code: 0, reason: "stopped", at });
  t.deepEqual(interpretExit({ ...base, exitCode: 0, started: false, stopSignals: [], stoppedBeforeStart: true }).reason, "stopped");
});

test("128+N not caused by stop is reported as the code, with a detail", (t) => {
  const exit = interpretExit({ ...base, exitCode: 137 });
  t.is(exit.code, 137);
  t.is(exit.reason, "exited");
  t.regex(exit.detail ?? "", /SIGKILL/);
  t.regex(interpretExit({ ...base, exitCode: 137, oomKilled: true }).detail ?? "", /OOM/);
});

test("a start Docker could not perform is failed, with Docker's error", (t) => {
  const exit = interpretExit({ ...base, started: false, exitCode: 127, error: 'exec: "/x": stat /x: no such file or directory' });
  t.deepEqual({ code: exit.code, reason: exit.reason }, { code: null, reason: "failed" });
  t.regex(exit.detail ?? "", /no such file/);
});

test("signalOf", (t) => {
  t.is(signalOf(137), "SIGKILL");
  t.is(signalOf(143), "SIGTERM");
  t.is(signalOf(1), undefined);
});
