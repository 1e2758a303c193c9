import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test, { type ExecutionContext } from "ava";
import { ValidationError } from "../contract/index.js";
import * as fields from "./spec-fields.js";

const dir = mkdtempSync(join(tmpdir(), "vmctl-spec-fields-"));
const file = join(dir, "file");
writeFileSync(file, "x");
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

/** The exact message (`field: problem`) `f` is refused with, after checking it is a ValidationError naming `field`. */
function refused(t: ExecutionContext, f: () => unknown, field: string): string {
  const err = t.throws(f, { instanceOf: ValidationError });
  t.is(err?.field, field);
  t.is(err?.code, "INVALID_ARGUMENT");
  return err?.message ?? "";
}

test("record takes a plain object only", (t) => {
  const obj = { a: 1 };
  t.is(fields.record(obj, "spec"), obj);
  t.is(refused(t, () => fields.record(null, "spec"), "spec"), "spec: must be an object");
  t.is(refused(t, () => fields.record([], "x.y"), "x.y"), "x.y: must be an object");
  t.is(refused(t, () => fields.record("s", "spec"), "spec"), "spec: must be an object");
});

test("refuseUnknown names the first unknown key under its prefix, with the given problem", (t) => {
  t.notThrows(() => fields.refuseUnknown({ a: 1, b: 2 }, ["a", "b", "c"]));
  t.is(refused(t, () => fields.refuseUnknown({ a: 1, bogus: 2 }, ["a"]), "bogus"), "bogus: unknown field");
  t.is(refused(t, () => fields.refuseUnknown({ rw: true }, ["source"], "mounts[0]."), "mounts[0].rw"), "mounts[0].rw: unknown field");
  t.is(refused(t, () => fields.refuseUnknown({ x: 1 }, [], "", "unknown option"), "x"), "x: unknown option");
});

test("str, bool and the numbers say what they expected", (t) => {
  t.is(fields.str("ok", "f"), "ok");
  t.is(refused(t, () => fields.str(1, "f"), "f"), "f: must be a string");
  t.is(refused(t, () => fields.str("a\0b", "f"), "f"), "f: must not contain NUL");
  t.false(fields.bool(false, "b"));
  t.is(refused(t, () => fields.bool("yes", "b"), "b"), "b: must be a boolean");

  t.is(fields.positiveInt(3, "n"), 3);
  for (const bad of [0, -1, 1.5, "1", Number.MAX_SAFE_INTEGER + 1]) {
    t.is(refused(t, () => fields.positiveInt(bad, "n"), "n"), "n: must be a positive integer");
  }
  t.is(fields.intIn(0, "uid", 0, 10), 0);
  t.is(fields.intIn(10, "uid", 0, 10), 10);
  t.is(refused(t, () => fields.intIn(11, "uid", 0, 10), "uid"), "uid: must be an integer from 0 to 10");
  t.is(refused(t, () => fields.intIn(2.5, "uid", 0, 10), "uid"), "uid: must be an integer from 0 to 10");
  t.is(fields.positiveNumber(0.5, "cpus"), 0.5);
  t.is(refused(t, () => fields.positiveNumber(0, "cpus"), "cpus"), "cpus: must be a positive number");
  t.is(refused(t, () => fields.positiveNumber(Number.POSITIVE_INFINITY, "cpus"), "cpus"), "cpus: must be a positive number");
  t.is(fields.numberIn(0.05, "s", 0.05, 3600), 0.05);
  t.is(refused(t, () => fields.numberIn(3601, "s", 0.05, 3600), "s"), "s: must be a number from 0.05 to 3600");
  t.is(refused(t, () => fields.numberIn(Number.NaN, "s", 0, 1), "s"), "s: must be a number from 0 to 1");
});

test("strings and commandArgs check each item under its index", (t) => {
  t.deepEqual(fields.strings([], "a"), []);
  t.is(refused(t, () => fields.strings(["x", 2], "templateArgs"), "templateArgs[1]"), "templateArgs[1]: must be a string");
  const upper = (v: unknown, f: string): string => {
    const s = fields.str(v, f);
    if (s !== s.toUpperCase()) throw new ValidationError(f, "must be upper case");
    return s;
  };
  t.deepEqual(fields.strings(["A", "B"], "u", upper), ["A", "B"]);
  t.is(refused(t, () => fields.strings(["A", "b"], "u", upper), "u[1]"), "u[1]: must be upper case");

  t.deepEqual(fields.commandArgs(["sh", "-c", ""]), ["sh", "-c", ""]);
  t.is(refused(t, () => fields.commandArgs(undefined), "args"), "args: required (the command to run)");
  t.is(refused(t, () => fields.commandArgs("sh -c true"), "args"), "args: must be an array of strings");
  t.is(refused(t, () => fields.commandArgs([]), "args"), "args: must name a command (empty array)");
  t.is(refused(t, () => fields.commandArgs([], "args", "must name a command (omit args for the default)"), "args"), "args: must name a command (omit args for the default)");
  t.is(refused(t, () => fields.commandArgs([""]), "args[0]"), "args[0]: must not be empty");
  t.is(refused(t, () => fields.commandArgs(["sh", null]), "args[1]"), "args[1]: must be a string");
  t.is(refused(t, () => fields.commandArgs([], "exec.args"), "exec.args"), "exec.args: must name a command (empty array)");
});

test("envVars: any name without = or NUL, or identifiers only; values through the given check", (t) => {
  t.deepEqual(fields.envVars({ "A.B": "1", X_1: "" }), { "A.B": "1", X_1: "" });
  t.is(refused(t, () => fields.envVars(["A=1"]), "env"), "env: must be an object");
  t.is(refused(t, () => fields.envVars({ "A=B": "1" }), "env.A=B"), 'env.A=B: name must be non-empty and contain no "=" or NUL');
  t.is(refused(t, () => fields.envVars({ "": "1" }), "env."), 'env.: name must be non-empty and contain no "=" or NUL');
  t.is(refused(t, () => fields.envVars({ A: 1 }), "env.A"), "env.A: must be a string");

  t.deepEqual(fields.envVars({ _A1: "v" }, "env", { identifiers: true }), { _A1: "v" });
  for (const bad of ["1BAD", "A.B", "A-B", ""]) {
    t.is(
      refused(t, () => fields.envVars({ [bad]: "v" }, "env", { identifiers: true }), `env.${bad}`),
      `env.${bad}: name must be letters, digits and _, not starting with a digit`,
    );
  }
  const oneLine = (v: unknown, f: string): string => {
    const s = fields.str(v, f);
    if (s.includes("\n")) throw new ValidationError(f, "must not contain a line break");
    return s;
  };
  t.is(refused(t, () => fields.envVars({ A: "a\nb" }, "environment", { value: oneLine }), "environment.A"), "environment.A: must not contain a line break");
});

test("host paths must be absolute, exist, and be of the kind asked for", (t) => {
  t.is(fields.hostPath(file, "p"), file);
  t.is(fields.hostPath(dir, "p"), dir);
  t.is(fields.hostDir(dir, "rootfs"), dir);
  t.is(fields.hostFile(file, "kernel"), file);
  t.is(refused(t, () => fields.hostDir(undefined, "rootfs"), "rootfs"), "rootfs: is required");
  t.is(refused(t, () => fields.hostFile(3, "kernel"), "kernel"), "kernel: must be a string");
  t.is(refused(t, () => fields.hostPath("relative/dir", "p"), "p"), "p: must be an absolute host path");
  const missing = join(dir, "missing");
  t.is(refused(t, () => fields.hostPath(missing, "p"), "p"), `p: ${missing} does not exist`);
  t.is(refused(t, () => fields.hostDir(file, "rootfs"), "rootfs"), `rootfs: ${file} is not a directory`);
  t.is(refused(t, () => fields.hostFile(dir, "kernel"), "kernel"), `kernel: ${dir} is not a file`);
  const noSpaces = (v: unknown, f: string): string => {
    const s = fields.str(v, f);
    if (/\s/.test(s)) throw new ValidationError(f, "must not contain whitespace");
    return s;
  };
  t.is(refused(t, () => fields.hostDir("/a b", "rootfs", noSpaces), "rootfs"), "rootfs: must not contain whitespace");
});

test("containerPath is absolute, without .., and normalised", (t) => {
  t.is(fields.containerPath("/a//b/./c/", "cwd"), "/a/b/c/");
  t.is(fields.containerPath("/", "cwd"), "/");
  t.is(refused(t, () => fields.containerPath("tmp", "cwd"), "cwd"), "cwd: must be an absolute path inside the container");
  t.is(refused(t, () => fields.containerPath("/a/../b", "cwd"), "cwd"), 'cwd: must not contain ".."');
  t.is(refused(t, () => fields.containerPath(undefined, "workdir"), "workdir"), "workdir: must be a string");
});

test("mounts: source on the host, destination inside (not /), readOnly a boolean, nothing else", (t) => {
  t.deepEqual(fields.mounts([{ source: dir, destination: "/data//x", readOnly: true }, { source: file, destination: "/f" }]), [
    { source: dir, destination: "/data/x", readOnly: true },
    { source: file, destination: "/f" },
  ]);
  t.is(refused(t, () => fields.mounts({}), "mounts"), "mounts: must be an array");
  t.is(refused(t, () => fields.mounts(["x"]), "mounts[0]"), "mounts[0]: must be an object");
  t.is(refused(t, () => fields.mounts([{ source: dir, destination: "/m", rw: true }]), "mounts[0].rw"), "mounts[0].rw: unknown field");
  t.is(refused(t, () => fields.mounts([{ source: "rel", destination: "/m" }]), "mounts[0].source"), "mounts[0].source: must be an absolute host path");
  t.is(refused(t, () => fields.mounts([{ destination: "/m" }]), "mounts[0].source"), "mounts[0].source: is required");
  t.is(
    refused(t, () => fields.mounts([{ source: dir, destination: "/m" }, { source: dir, destination: "/" }]), "mounts[1].destination"),
    'mounts[1].destination: must not be "/"',
  );
  t.is(refused(t, () => fields.mounts([{ source: dir, destination: "/m", readOnly: "yes" }]), "mounts[0].readOnly"), "mounts[0].readOnly: must be a boolean");
  const noSpaces = (v: unknown, f: string): string => {
    const s = fields.str(v, f);
    if (/\s/.test(s)) throw new ValidationError(f, "must not contain whitespace");
    return s;
  };
  t.is(
    refused(t, () => fields.mounts([{ source: dir, destination: "/a b" }], "volumes", noSpaces), "volumes[0].destination"),
    "volumes[0].destination: must not contain whitespace",
  );
});
