import test from "ava";
import { interpretExit, signalOf } from "./exit.js";

const at = new Date(0);
const base = { started: true, stopSignals: [], at };

test("a plain exit keeps its code", (t) => {
  t.deepEqual(interpretExit({ ...base, status: 7 }), { code: 7, reason: "exited", at });
});

test("128+N after we sent signal N means killed by it", (t) => {
  t.deepEqual(interpretExit({ ...base, status: 137, stopSignals: ["SIGTERM", "SIGKILL"] }), {
    code: null,
    signal: "SIGKILL",
    reason: "stopped",
    at,
  });
  t.deepEqual(interpretExit({ ...base, status: 0, stopSignals: ["SIGTERM"] }), { code: 0, reason: "stopped", at });
});

test("128+N without a stop keeps the code and says what it may mean", (t) => {
  const exit = interpretExit({ ...base, status: 137 });
  t.is(exit.code, 137);
  t.is(exit.reason, "exited");
  t.regex(exit.detail ?? "", /SIGKILL/);
  t.is(signalOf(143), "SIGTERM");
  t.is(signalOf(7), undefined);
});

test("no container pid means the runtime failed to start it", (t) => {
  const exit = interpretExit({ ...base, started: false, status: 1, runtimeError: "exec: not found" });
  t.deepEqual(exit, { code: null, reason: "failed", detail: "exec: not found", at });
});

test("no status means lost; stop before start means stopped", (t) => {
  t.is(interpretExit({ ...base, status: undefined }).reason, "lost");
  t.is(interpretExit({ ...base, status: undefined, stoppedBeforeStart: true }).reason, "stopped");
});
