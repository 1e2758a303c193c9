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

test("instanceof knows the error classes of another copy of this module (a bundle's), and keeps them apart", async (t) => {
  // A second copy: the same source under another module URL, so other class objects.
  const copy = (await import(`./errors.ts?copy=${Date.now()}`)) as typeof import("./errors.js");
  t.not(copy.VmctlError, VmctlError);
  const theirs = new copy.VmctlError("NOT_FOUND", "x");
  const theirValidation = new copy.ValidationError("spec.a", "is required");
  t.false(Object.prototype.isPrototypeOf.call(VmctlError.prototype, theirs), "not on our prototype chain");
  t.true(theirs instanceof VmctlError);
  t.true(theirValidation instanceof VmctlError);
  t.true(theirValidation instanceof ValidationError);
  t.false(theirs instanceof ValidationError, "a VmctlError is not a ValidationError");
  t.true(new ValidationError("a", "b") instanceof copy.ValidationError, "and the other way round");
  t.true(new VmctlError("INTERNAL", "x") instanceof copy.VmctlError);

  // Neither shape nor name is enough: only the brand (or the chain) says so.
  t.false(Object.assign(new Error("x"), { name: "VmctlError", code: "NOT_FOUND", details: {} }) instanceof VmctlError);
  for (const other of [null, undefined, "VmctlError", 3, {}, VmctlError, new Error("x")]) t.false(other instanceof VmctlError, String(other));

  // A subclass without a brand of its own still works by its prototype chain.
  class Local extends VmctlError {}
  t.true(new Local("INTERNAL", "x") instanceof Local);
  t.true(new Local("INTERNAL", "x") instanceof VmctlError);
  t.false(new VmctlError("INTERNAL", "x") instanceof Local);
  t.false(theirs instanceof Local);

  // from() makes a foreign one ours, keeping code, details and adding the context.
  const adopted = VmctlError.from(theirValidation, "creating");
  t.true(Object.prototype.isPrototypeOf.call(VmctlError.prototype, adopted));
  t.is(adopted.code, "INVALID_ARGUMENT");
  t.is(adopted.message, "creating: spec.a: is required");
  t.deepEqual(adopted.details, { field: "spec.a" });
});

test("instanceof narrows to the class on the right", (t) => {
  const err: unknown = new ValidationError("f", "p");
  if (err instanceof ValidationError) t.is(err.field, "f"); // compiles only if narrowed to ValidationError
  else t.fail();
});
