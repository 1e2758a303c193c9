import test from "ava";
import { pruneFailures, prunedLine } from "./system.js";

const thing = { target: "docker", kind: "docker-container", id: "3f2a", serviceId: "0123456789abcdef" };

test("a line per thing: removed, would remove, not removed with its error; no service, no parenthesis", (t) => {
  t.is(prunedLine({ ...thing, removed: true }, false), "removed docker docker-container 3f2a (service 0123456789abcdef)");
  t.is(prunedLine({ ...thing, removed: false }, true), "would remove docker docker-container 3f2a (service 0123456789abcdef)");
  t.is(prunedLine({ ...thing, removed: false, error: "daemon gone" }, false), "not removed docker docker-container 3f2a (service 0123456789abcdef): daemon gone");
  t.is(prunedLine({ target: "oci", kind: "runc-container", id: "x", removed: true }, false), "removed oci runc-container x");
});

test("failures: things left and targets not asked count; a dry run leaves things by design", (t) => {
  t.is(pruneFailures({ dryRun: false, things: [{ ...thing, removed: true }], failures: [] }), 0);
  t.is(pruneFailures({ dryRun: false, things: [{ ...thing, removed: false, error: "x" }], failures: [{ target: "lxc", error: "y" }] }), 2);
  t.is(pruneFailures({ dryRun: true, things: [{ ...thing, removed: false }], failures: [] }), 0);
});
