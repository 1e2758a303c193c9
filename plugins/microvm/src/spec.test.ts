import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import fc from "fast-check";
import { ValidationError, VmctlError } from "@vmctl/core/contract";
import { effective, parseMicrovmSpec } from "./spec.js";

const dir = mkdtempSync(join(tmpdir(), "vmctl-mvm-spec-"));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));
const kernel = join(dir, "vmlinux");
const disk = join(dir, "disk.img");
writeFileSync(kernel, "x");
writeFileSync(disk, "x");

function fieldOf(t: import("ava").ExecutionContext, input: unknown): string | undefined {
  const err = t.throws(() => parseMicrovmSpec(input), { instanceOf: ValidationError });
  return err?.field;
}

test("a minimal spec is the kernel; defaults are applied by effective(), not stored", (t) => {
  const spec = parseMicrovmSpec({ kernel });
  t.deepEqual(spec, { kernel });
  t.deepEqual(effective(spec), { kernel, bootArgs: "", vcpus: 1, memoryMib: 128, drives: [] });
});

test("a full spec keeps every field", (t) => {
  const input = {
    kernel,
    bootArgs: "console=ttyS0 vmctl.test=hello",
    vcpus: 2,
    memoryMib: 64,
    drives: [
      { id: "root", path: disk, root: true },
      { id: "data", path: kernel, readOnly: true },
    ],
  };
  t.deepEqual(parseMicrovmSpec(input), input);
});

test("each bad field is named by its path", (t) => {
  t.is(fieldOf(t, null), "");
  t.is(fieldOf(t, []), "");
  t.is(fieldOf(t, { kernel: "vmlinux" }), "kernel");
  t.is(fieldOf(t, { kernel: join(dir, "missing") }), "kernel");
  t.is(fieldOf(t, { kernel: dir }), "kernel");
  t.is(fieldOf(t, { kernel, image: "x" }), "image");
  t.is(fieldOf(t, { kernel, bootArgs: 3 }), "bootArgs");
  t.is(fieldOf(t, { kernel, bootArgs: "a\nb" }), "bootArgs");
  t.is(fieldOf(t, { kernel, initrd: "initrd.cpio" }), "initrd");
  t.is(fieldOf(t, { kernel, initrd: join(dir, "missing") }), "initrd");
  t.is(fieldOf(t, { kernel, initrd: 7 }), "initrd");
  t.is(fieldOf(t, { kernel, vcpus: 0 }), "vcpus");
  t.is(fieldOf(t, { kernel, vcpus: 33 }), "vcpus");
  t.is(fieldOf(t, { kernel, vcpus: 1.5 }), "vcpus");
  t.is(fieldOf(t, { kernel, memoryMib: -128 }), "memoryMib");
  t.is(fieldOf(t, { kernel, memoryMib: 0 }), "memoryMib");
  t.is(fieldOf(t, { kernel, memoryMib: "128" }), "memoryMib");
  t.is(fieldOf(t, { kernel, drives: {} }), "drives");
  t.is(fieldOf(t, { kernel, drives: [{ id: "a", path: disk, ro: true }] }), "drives[0].ro");
  t.is(fieldOf(t, { kernel, drives: [{ path: disk }] }), "drives[0].id");
  t.is(fieldOf(t, { kernel, drives: [{ id: "a b", path: disk }] }), "drives[0].id");
  t.is(fieldOf(t, { kernel, drives: [{ id: "a", path: join(dir, "nope") }] }), "drives[0].path");
  t.is(fieldOf(t, { kernel, drives: [{ id: "a", path: disk, readOnly: "yes" }] }), "drives[0].readOnly");
});

test("drive ids are unique and there is at most one root", (t) => {
  t.is(fieldOf(t, { kernel, drives: [{ id: "a", path: disk }, { id: "a", path: kernel }] }), "drives[1].id");
  t.is(
    fieldOf(t, { kernel, drives: [{ id: "a", path: disk, root: true }, { id: "b", path: kernel, root: true }] }),
    "drives[1].root",
  );
  t.notThrows(() => parseMicrovmSpec({ kernel, drives: [{ id: "a", path: disk, root: false }, { id: "b", path: kernel, root: true }] }));
});

test("the error message names the field", (t) => {
  const err = t.throws(() => parseMicrovmSpec({ kernel, memoryMib: -1 }), { instanceOf: ValidationError });
  t.regex(err?.message ?? "", /^memoryMib: must be a positive integer/);
  t.is(err?.code, "INVALID_ARGUMENT");
});

test("without a kernel, the cache's default kernel, by its key path; none built: FAILED_PRECONDITION naming kernel", (t) => {
  const cache = join(dir, "kernel-cache");
  const empty = t.throws(() => parseMicrovmSpec({ memoryMib: 64 }, { kernelCache: cache }), { instanceOf: VmctlError });
  t.is(empty?.code, "FAILED_PRECONDITION");
  t.is(empty?.details.field, "kernel");
  t.regex(empty?.message ?? "", /run `vmctl kernel build`/);

  mkdirSync(join(cache, "0123456789abcdef"), { recursive: true });
  writeFileSync(join(cache, "0123456789abcdef", "vmlinux"), "x");
  symlinkSync("0123456789abcdef", join(cache, "default"));
  t.deepEqual(parseMicrovmSpec({ memoryMib: 64 }, { kernelCache: cache }), { kernel: join(cache, "0123456789abcdef", "vmlinux"), memoryMib: 64 });
  // An explicit kernel is taken as given, default or not; a bad one is still a bad field.
  t.deepEqual(parseMicrovmSpec({ kernel }, { kernelCache: cache }), { kernel });
  t.is(t.throws(() => parseMicrovmSpec({ kernel: join(dir, "missing") }, { kernelCache: cache }), { instanceOf: ValidationError })?.field, "kernel");
  t.is(t.throws(() => parseMicrovmSpec({ kernel: null }, { kernelCache: cache }), { instanceOf: ValidationError })?.field, "kernel");
});

test("an initrd is kept as given and reaches effective()", (t) => {
  const spec = parseMicrovmSpec({ kernel, initrd: kernel });
  t.deepEqual(spec, { kernel, initrd: kernel });
  t.is(effective(spec).initrd, kernel);
  t.false("initrd" in effective(parseMicrovmSpec({ kernel })));
});

test("property: any JSON as a spec either parses to known, valid fields or is refused naming one", (t) => {
  const emptyCache = join(dir, "no-kernels");
  const fields = ["", "kernel", "bootArgs", "initrd", "vcpus", "memoryMib", "drives"];
  const hostile = fc.oneof(
    fc.string({ unit: "binary" }),
    fc.constantFrom(kernel, disk, dir, "", "\0", `${kernel}\0`, "relative", "/nonexistent/é", "x".repeat(70_000)),
  );
  const value = fc.oneof(hostile, fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(fc.jsonValue(), { maxLength: 3 }), fc.jsonValue());
  const drive = fc.dictionary(fc.constantFrom("id", "path", "readOnly", "root", "extra"), fc.oneof(value, fc.constant(disk)));
  const spec = fc.oneof(
    fc.dictionary(fc.constantFrom(...fields.slice(1), "image", "__proto__"), fc.oneof(value, fc.array(drive, { maxLength: 20 }))),
    fc.jsonValue(),
  );
  fc.assert(
    fc.property(spec, (input) => {
      let parsed;
      try {
        parsed = parseMicrovmSpec(input, { kernelCache: emptyCache });
      } catch (err) {
        // Refused: one of our errors, naming a field of the spec (or the spec itself).
        if (!(err instanceof VmctlError)) throw err;
        const field = err instanceof ValidationError ? err.field : err.details.field;
        if (typeof field !== "string") return false;
        // A known field, a drive's, or an unknown key of the input named as itself.
        const keys = input !== null && typeof input === "object" && !Array.isArray(input) ? Object.keys(input) : [];
        return fields.includes(field) || /^drives(\[\d+\](\.\w+)?)?$/.test(field) || keys.includes(field);
      }
      // Accepted: only known fields, the kernel and initrd are the host's files.
      return (
        Object.keys(parsed).every((k) => fields.includes(k)) &&
        parsed.kernel === kernel &&
        (parsed.initrd === undefined || parsed.initrd === kernel || parsed.initrd === disk)
      );
    }),
    { numRuns: 2000 },
  );
  t.pass();
});
