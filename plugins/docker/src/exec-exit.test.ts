// Reading an exec's end from Docker's exit code: pure.
import test from "ava";
import { ranExit, startFailureCode } from "./exec-exit.js";

test("a command Docker could not start: 127 when not found, 126 otherwise (Docker 20.10's own messages)", (t) => {
  const prefix = "OCI runtime exec failed: exec failed: unable to start container process: exec: ";
  t.is(startFailureCode(`${prefix}"nosuch": executable file not found in $PATH: unknown\r\n`), 127);
  t.is(startFailureCode(`${prefix}"/nosuch/x": stat /nosuch/x: no such file or directory: unknown\r\n`), 127);
  t.is(startFailureCode(`${prefix}"/etc": permission denied: unknown\r\n`), 126);
  t.is(startFailureCode(""), 126, "no reason seen (cancelled before reading): Docker's 126");
});

test("128+N is the signal only when the session sent signal N; otherwise the code", (t) => {
  t.deepEqual(ranExit(143, new Map([[15, "SIGTERM"]])), { code: null, signal: "SIGTERM" });
  t.deepEqual(ranExit(137, new Map([[9, "SIGKILL"]])), { code: null, signal: "SIGKILL" });
  t.deepEqual(ranExit(134, new Map([[6, "SIGABRT"]])), { code: null, signal: "SIGABRT" }, "the name it was sent by (6 is also SIGIOT)");
  t.deepEqual(ranExit(143, new Map()), { code: 143 }, "a command's own exit 143");
  t.deepEqual(ranExit(137, new Map([[15, "SIGTERM"]])), { code: 137 });
  t.deepEqual(ranExit(0, new Map([[15, "SIGTERM"]])), { code: 0 }, "it handled the signal and exited 0");
  t.deepEqual(ranExit(3, new Map()), { code: 3 });
});
