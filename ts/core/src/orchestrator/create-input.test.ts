import test from "ava";
import { ValidationError } from "../errors.js";
import { checkCreateInput, generatedName, NAME_PATTERN, newServiceId, specError } from "./create-input.js";

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
