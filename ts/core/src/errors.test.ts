import test from "ava";
import { ValidationError, VmctlError } from "./errors.js";

test("from() keeps a VmctlError, maps errno codes, and recognises a VmctlError from another module copy", (t) => {
  const own = new VmctlError("NOT_FOUND", "x");
  t.is(VmctlError.from(own), own);
  const refused = VmctlError.from(Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }), "vmm");
  t.is(refused.code, "UNAVAILABLE");
  t.is(refused.message, "vmm: connect ECONNREFUSED");
  t.is(VmctlError.from("weird").code, "INTERNAL");

  class ForeignError extends Error {
    override name = "VmctlError";
    code = "FAILED_PRECONDITION";
    details = { serviceId: "s1" };
  }
  const foreign = VmctlError.from(new ForeignError("busy"), "stopping");
  t.true(foreign instanceof VmctlError);
  t.is(foreign.code, "FAILED_PRECONDITION");
  t.is(foreign.message, "stopping: busy");
  t.deepEqual(foreign.details, { serviceId: "s1" });
  // An unrelated error whose `code` is not one of ours stays INTERNAL.
  t.is(VmctlError.from(Object.assign(new Error("x"), { name: "VmctlError", code: "BOGUS" })).code, "INTERNAL");
});

test("ValidationError names its field and nests under a prefix", (t) => {
  const err = new ValidationError("memoryMib", "must be positive");
  t.is(err.code, "INVALID_ARGUMENT");
  t.is(err.message, "memoryMib: must be positive");
  t.is(err.within("spec").message, "spec.memoryMib: must be positive");
  t.is(err.within("spec").details.field, "spec.memoryMib");
  // The value as a whole (field ""): no "spec.spec", no leading ": ".
  const whole = new ValidationError("", "must be an object");
  t.is(whole.message, "must be an object");
  t.is(whole.within("spec").message, "spec: must be an object");
  t.is(new ValidationError("[2]", "must be a string").within("args").message, "args[2]: must be a string");
});
