import test from "ava";
import { interpretExit, signalOf } from "./exit.js";

const at = new Date(0);
const base = { started: true, stopSignals: [], at };

test("signalOf reads 128+N", (t) => {
  t.is(signalOf(137), "SIGKILL");
  t.is(signalOf(143), "SIGTERM");
  t.is(signalOf(7), undefined);
});

test("an exit on its own is reason exited with the code", (t) => {
  t.deepEqual(interpretExit({ ...base, status: 7 }), { code: 7, reason: "exited", at });
  t.is(interpretExit({ ...base, status: 255 }).code, 255);
  t.regex(interpretExit({ ...base, status: 255 }).detail ?? "", /could not be executed/);
  t.regex(interpretExit({ ...base, status: 137 }).detail ?? "", /SIGKILL/);
});

test("after stop: the signal we sent, or the code the workload chose", (t) => {
  t.deepEqual(interpretExit({ ...base, status: 143, stopSignals: ["SIGTERM"] }), { code: null, signal: "SIGTERM", reason: "stopped", at });
  t.deepEqual(interpretExit({ ...base, status: 137, stopSignals: ["SIGTERM", "SIGKILL"] }), { code: null, signal: "SIGKILL", reason: "stopped", at });
  t.deepEqual(interpretExit({ ...base, status: 0, stopSignals: ["SIGTERM"] }), { code: 0, reason: "stopped", at });
});

test("no status is lost; never started is failed with LXC's reason; refused and stopped-before-start", (t) => {
  t.is(interpretExit({ ...base, status: undefined }).reason, "lost");
  t.deepEqual(interpretExit({ ...base, started: false, status: 1, lxcError: "Read-only file system" }), {
    code: null,
    reason: "failed",
    detail: "Read-only file system",
    at,
  });
  t.deepEqual(interpretExit({ ...base, status: undefined, refused: "x not found" }), { code: null, reason: "failed", detail: "x not found", at });
  t.is(interpretExit({ ...base, status: undefined, stoppedBeforeStart: true }).reason, "stopped");
});
