import test from "ava";
import { CliError } from "../errors.js";
import { age, exitSummary } from "../output/format.js";
import { parseFilters } from "./ps.js";
import { exitCodeOf, parseSpec } from "./run.js";
import { keyValues } from "./parse.js";

test("exit codes: the workload's code, 128 + signal number, 125 when it never ran", (t) => {
  const at = new Date();
  t.is(exitCodeOf({ code: 3, reason: "exited", at }), 3);
  t.is(exitCodeOf({ code: null, signal: "SIGKILL", reason: "stopped", at }), 137);
  t.is(exitCodeOf({ code: null, signal: "SIGTERM", reason: "stopped", at }), 143);
  t.is(exitCodeOf({ code: null, reason: "failed", at }), 125);
});

test("ps filters, -e/--label pairs and --spec are parsed or refused as usage errors", (t) => {
  t.deepEqual(parseFilters(["label=a=b", "label=c", "target=oci", "phase=running", "phase=exited"]), {
    labels: ["a=b", "c"],
    target: "oci",
    phases: ["running", "exited"],
  });
  for (const bad of ["phase=sleeping", "colour=red", "label="]) {
    t.is(t.throws(() => parseFilters([bad]), { instanceOf: CliError })?.exitCode, 2);
  }
  t.deepEqual(keyValues(["A=1", "B=x=y", "C="], "-e"), { A: "1", B: "x=y", C: "" });
  t.throws(() => keyValues(["=1"], "-e"), { message: "-e =1: expected KEY=VALUE" });
  t.deepEqual(parseSpec('{"cwd":"/"}'), { cwd: "/" });
  t.throws(() => parseSpec("[1]"), { message: "--spec must be a JSON object" });
  t.throws(() => parseSpec("@/nonexistent/spec.json"), { message: /^--spec @\/nonexistent\/spec\.json: / });
});

test("ages and exit summaries for the table", (t) => {
  const now = Date.now();
  t.is(age(new Date(now - 5_000), now), "5s");
  t.is(age(new Date(now - 180_000), now), "3m");
  t.is(age(new Date(now - 2 * 3600_000), now), "2h");
  t.is(age(new Date(now - 4 * 86400_000), now), "4d");
  t.is(exitSummary(undefined), "-");
  t.is(exitSummary({ code: 0, reason: "exited", at: new Date() }), "0");
  t.is(exitSummary({ code: null, signal: "SIGKILL", reason: "stopped", at: new Date() }), "SIGKILL");
  t.is(exitSummary({ code: null, reason: "lost", at: new Date() }), "lost");
});
