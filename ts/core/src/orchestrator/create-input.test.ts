import test from "ava";
import { ValidationError, VmctlError } from "../errors.js";
import type { RunInput, ServiceFactory } from "../contract/target.js";
import { checkCreateInput, generatedName, NAME_PATTERN, newServiceId, specError, specFromRun } from "./create-input.js";

test("a good request is normalised: defaults, de-duplicated dependsOn, zero readiness fields dropped", (t) => {
  const input = checkCreateInput({
    target: "oci",
    spec: {},
    name: "",
    dependsOn: ["db", "db", "cache"],
    readiness: { check: { kind: "http", url: "http://127.0.0.1:8080/", expectStatus: 0 }, intervalMs: 0, timeoutMs: 5000 },
  });
  t.deepEqual(input, {
    target: "oci",
    labels: {},
    dependsOn: ["db", "cache"],
    start: false,
    readiness: { check: { kind: "http", url: "http://127.0.0.1:8080/" }, timeoutMs: 5000 },
  });
});

test("each bad field is named", (t) => {
  const field = (input: unknown): string | undefined =>
    t.throws(() => checkCreateInput(input as never), { instanceOf: ValidationError })?.field;
  t.is(field({ spec: {} }), "target");
  t.is(field({ target: "x", name: "-bad" }), "name");
  t.is(field({ target: "x", name: "a".repeat(64) }), "name");
  t.is(field({ target: "x", labels: { "bad key": "v" } }), "labels.bad key");
  t.is(field({ target: "x", labels: { k: 1 } }), "labels.k");
  t.is(field({ target: "x", dependsOn: ["ok", ""] }), "dependsOn[1]");
  t.is(field({ target: "x", readiness: {} }), "readiness.check");
  t.is(field({ target: "x", readiness: { check: { kind: "udp" } } }), "readiness.check.kind");
  t.is(field({ target: "x", readiness: { check: { kind: "tcp", port: 0 } } }), "readiness.check.port");
  t.is(field({ target: "x", readiness: { check: { kind: "http", url: "ftp://h/" } } }), "readiness.check.url");
  t.is(field({ target: "x", readiness: { check: { kind: "command", args: [] } } }), "readiness.check.args");
  t.is(field({ target: "x", readiness: { check: { kind: "tcp", port: 1 }, timeoutMs: -5 } }), "readiness.timeoutMs");
});

test("ids are 16 hex digits; generated names fit the name pattern", (t) => {
  const id = newServiceId();
  t.regex(id, /^[0-9a-f]{16}$/);
  for (const target of ["oci", "aws-ec2", "Weird Target!", "-x", ""]) t.regex(generatedName(target, id), NAME_PATTERN);
});

test("a target's validation error is put under spec., recognised by shape", (t) => {
  const foreign = Object.assign(new Error("memoryMib: must be positive"), { name: "ValidationError", field: "memoryMib" });
  t.is(specError(foreign).message, "spec.memoryMib: must be positive");
  t.is(specError(new ValidationError("[0]", "bad")).message, "spec[0]: bad");
  t.is(specError(Object.assign(new Error(": must be an object"), { name: "ValidationError", field: "" })).message, "spec: must be an object");
  t.is(specError(new TypeError("boom")).message, "spec: boom");
});

test("a target's precondition failure naming a field keeps its kind, its field under spec.", (t) => {
  const missing = new VmctlError("FAILED_PRECONDITION", "kernel: no default kernel", { details: { field: "kernel" } });
  const err = specError(missing);
  t.is(err.code, "FAILED_PRECONDITION");
  t.is(err.message, "spec.kernel: no default kernel");
  t.is(err.details.field, "spec.kernel");
  // Another copy of the class (a plugin's bundle) is recognised by shape, like ValidationError.
  const foreign = Object.assign(new Error("kernel: gone"), { name: "VmctlError", code: "FAILED_PRECONDITION", details: { field: "kernel" } });
  t.is(specError(foreign).code, "FAILED_PRECONDITION");
  // Without a field, or of an unknown kind, it stays a spec problem as before.
  t.is(specError(new VmctlError("FAILED_PRECONDITION", "no field")).code, "INVALID_ARGUMENT");
  t.is(specError(Object.assign(new Error("x: y"), { name: "VmctlError", code: "BOGUS", details: { field: "x" } })).code, "INVALID_ARGUMENT");
});

test("run shorthand goes through the target's specFromRun; a target without it needs an explicit spec", (t) => {
  const seen: RunInput[] = [];
  const withRun = {
    target: "t",
    specFromRun: (input: RunInput) => {
      seen.push(input);
      return { rootfs: input.image, args: input.command, ...input.spec };
    },
  } as unknown as ServiceFactory;
  t.deepEqual(specFromRun(withRun, { image: "/r", command: ["sh"], env: { A: "1" } }, { cwd: "/" }), { rootfs: "/r", args: ["sh"], cwd: "/" });
  t.deepEqual(seen[0], { image: "/r", command: ["sh"], env: { A: "1" }, mounts: [], copyOut: [], spec: { cwd: "/" } });
  t.deepEqual(specFromRun(withRun, { command: [] }, undefined), { rootfs: undefined, args: [] });

  const field = (f: () => unknown): string | undefined => t.throws(f, { instanceOf: ValidationError })?.field;
  t.is(field(() => specFromRun(withRun, { command: [1 as never] }, {})), "run.command[0]");
  t.is(field(() => specFromRun(withRun, { command: [], env: { "A=B": "x" } }, {})), "run.env.A=B");
  t.is(field(() => specFromRun(withRun, { image: "" }, {})), "run.image");
  t.is(field(() => specFromRun(withRun, {}, [1])), "spec");
  const without = { target: "process" } as unknown as ServiceFactory;
  const err = t.throws(() => specFromRun(without, { command: ["true"] }, {}), { instanceOf: ValidationError });
  t.is(err?.field, "spec");
  t.regex(err?.message ?? "", /this target needs --spec/);
});
