import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, posix } from "node:path";
import test from "ava";
import fc from "fast-check";
import { ValidationError, VmctlError } from "@vmctl/core/contract";
import { checkReference } from "@vmctl/core/target-kit";
import { requireVmmBinary, type VmmLimits } from "@vmctl/vmm-client";
import { DEFAULT_DISK_SIZE_MIB, effective, parseMicrovmSpec } from "./spec.js";
import { vmmLimitsOf } from "./vmm-limits.js";

const dir = mkdtempSync(join(tmpdir(), "vmctl-mvm-spec-"));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));
const kernel = join(dir, "vmlinux");
const disk = join(dir, "disk.img");
writeFileSync(kernel, "x");
writeFileSync(disk, "x");

/** The VMM's own drive limit, as it publishes it (`vmctl-vmm --limits`). */
const MAX_DRIVES = vmmLimitsOf(requireVmmBinary()).maxDrives;

function fieldOf(t: import("ava").ExecutionContext, input: unknown, limits?: VmmLimits): string | undefined {
  const err = t.throws(() => parseMicrovmSpec(input, limits === undefined ? {} : { limits }), { instanceOf: ValidationError });
  return err?.field;
}

test("the drive count, drive ids, vCPUs and memory are checked against the VMM's published limits, not a copy", (t) => {
  const limits: VmmLimits = { maxDrives: 2, driveIdPattern: /^[a-z]{1,3}$/u, driveIdMaxLen: 3, maxVcpus: 4, minMemMib: 8, maxMemMib: 64 };
  const ok = { kernel, vcpus: 4, memoryMib: 64, drives: [{ id: "abc", path: disk }, { id: "d", path: disk }] };
  t.deepEqual(parseMicrovmSpec(ok, { limits }), ok);
  t.is(fieldOf(t, { ...ok, drives: [...ok.drives, { id: "e", path: disk }] }, limits), "drives");
  t.is(fieldOf(t, { kernel, drives: [{ id: "abcd", path: disk }] }, limits), "drives[0].id");
  t.is(fieldOf(t, { kernel, drives: [{ id: "A", path: disk }] }, limits), "drives[0].id");
  t.is(fieldOf(t, { kernel, vcpus: 5 }, limits), "vcpus");
  t.is(fieldOf(t, { kernel, memoryMib: 7 }, limits), "memoryMib");
  t.is(fieldOf(t, { kernel, memoryMib: 65 }, limits), "memoryMib");
  // The real VMM's: its memory bound too, and a spec without those fields needs no VMM at all.
  const real = vmmLimitsOf(requireVmmBinary());
  t.is(fieldOf(t, { kernel, memoryMib: real.maxMemMib + 1 }), "memoryMib");
  t.notThrows(() => parseMicrovmSpec({ kernel, memoryMib: real.maxMemMib }));
  t.deepEqual(parseMicrovmSpec({ kernel }, { vmm: "/nonexistent/vmctl-vmm" }), { kernel });
  const noVmm = t.throws(() => parseMicrovmSpec({ kernel, vcpus: 1 }, { vmm: "/nonexistent/vmctl-vmm" }), { instanceOf: VmctlError });
  t.is(noVmm?.code, "FAILED_PRECONDITION");
});

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
  t.is(fieldOf(t, { kernel, imag: "x" }), "imag");
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
  const fields = ["", "kernel", "image", "diskSizeMib", "bootArgs", "initrd", "vcpus", "memoryMib", "drives"];
  const hostile = fc.oneof(
    fc.string({ unit: "binary" }),
    fc.constantFrom(kernel, disk, dir, "", "\0", `${kernel}\0`, "relative", "/nonexistent/é", "x".repeat(70_000)),
  );
  const value = fc.oneof(hostile, fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(fc.jsonValue(), { maxLength: 3 }), fc.jsonValue());
  const drive = fc.dictionary(fc.constantFrom("id", "path", "readOnly", "root", "extra"), fc.oneof(value, fc.constant(disk)));
  const spec = fc.oneof(
    fc.dictionary(fc.constantFrom(...fields.slice(1), "imag", "__proto__"), fc.oneof(value, fc.array(drive, { maxLength: 20 }))),
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
      // Accepted: only known fields, the kernel and initrd are the host's files (their format
      // is the VMM's to check at start: a disk image given as the kernel passes here); a
      // size only with an image.
      return (
        Object.keys(parsed).every((k) => fields.includes(k)) &&
        (parsed.diskSizeMib === undefined || parsed.image !== undefined) &&
        (parsed.kernel === kernel || parsed.kernel === disk) &&
        (parsed.initrd === undefined || parsed.initrd === kernel || parsed.initrd === disk)
      );
    }),
    { numRuns: 2000 },
  );
  t.pass();
});

// ---- image, diskSizeMib ----------------------------------------------------------------

test("an image and its writable layer's size are kept as given; effective() defaults the size to 10 GiB", (t) => {
  const spec = parseMicrovmSpec({ kernel, image: "node:20" });
  t.deepEqual(spec, { kernel, image: "node:20" });
  t.is(effective(spec).diskSizeMib, DEFAULT_DISK_SIZE_MIB);
  t.is(DEFAULT_DISK_SIZE_MIB, 10 * 1024);
  t.deepEqual(parseMicrovmSpec({ kernel, image: "oci:/srv/layout:v1", diskSizeMib: 16 }), { kernel, image: "oci:/srv/layout:v1", diskSizeMib: 16 });
  t.is(parseMicrovmSpec({ kernel, image: "a", diskSizeMib: 1_048_576 }).diskSizeMib, 1_048_576);
  // Without an image nothing changes, and effective() says nothing about one.
  t.false("image" in effective(parseMicrovmSpec({ kernel })));
  t.false("diskSizeMib" in effective(parseMicrovmSpec({ kernel })));
});

test("diskSizeMib: an integer from 16 to 1048576, only with an image", (t) => {
  for (const bad of [15, 0, -1, 1_048_577, 16.5, "64", null, Number.NaN, 2 ** 53]) {
    t.is(fieldOf(t, { kernel, image: "a", diskSizeMib: bad }), "diskSizeMib", `diskSizeMib ${String(bad)}`);
  }
  const without = t.throws(() => parseMicrovmSpec({ kernel, diskSizeMib: 64 }), { instanceOf: ValidationError });
  t.is(without?.field, "diskSizeMib");
  t.regex(without?.message ?? "", /only allowed with `image`/);
});

test("with an image, drive ids rootfs and scratch are reserved and no user drive is root", (t) => {
  t.is(fieldOf(t, { kernel, image: "a", drives: [{ id: "rootfs", path: disk }] }), "drives[0].id");
  t.is(fieldOf(t, { kernel, image: "a", drives: [{ id: "data", path: disk }, { id: "scratch", path: disk }] }), "drives[1].id");
  t.is(fieldOf(t, { kernel, image: "a", drives: [{ id: "data", path: disk, root: true }] }), "drives[0].root");
  // Two slots are the image's: at most MAX_DRIVES - 2 of the user's.
  const many = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `d${i}`, path: disk }));
  t.notThrows(() => parseMicrovmSpec({ kernel, image: "a", drives: many(MAX_DRIVES - 2) }));
  t.is(fieldOf(t, { kernel, image: "a", drives: many(MAX_DRIVES - 1) }), "drives");
  // Without an image the ids are the user's, as before.
  t.notThrows(() => parseMicrovmSpec({ kernel, drives: [{ id: "rootfs", path: disk, root: true }, { id: "scratch", path: disk }] }));
  t.notThrows(() => parseMicrovmSpec({ kernel, drives: many(MAX_DRIVES) }));
  t.notThrows(() => parseMicrovmSpec({ kernel, image: "a", drives: [{ id: "data", path: disk, root: false, readOnly: true }] }));
});

test("bad image strings are refused naming image", (t) => {
  const bad = ["", "a\nb", "node:20\0", "\u001b[31m", "x\u007f", "\u0085", "\uD800", "x".repeat(4097), "node 20", "node:20\u00a0", "é".repeat(10), `oci:/${"é".repeat(2046)}`, 7, null, true, ["node"], {}];
  for (const value of bad) {
    t.is(fieldOf(t, { kernel, image: value }), "image", `image ${JSON.stringify(value)?.slice(0, 40)}`);
  }
  t.notThrows(() => parseMicrovmSpec({ kernel, image: "x".repeat(4096) }));
  // An archive's path may hold any Unicode; a registry reference is ASCII.
  t.notThrows(() => parseMicrovmSpec({ kernel, image: `oci:/${"é".repeat(2045)}` }));
  t.notThrows(() => parseMicrovmSpec({ kernel, image: "docker-archive:/srv/café.tar" }));
});

test("property: any string as image is kept exactly when the image store would take it (the kit's checkReference), else refused naming image", (t) => {
  const storeTakes = (value: string): boolean => {
    try {
      return checkReference(value) === value;
    } catch {
      return false;
    }
  };
  const image = fc.oneof(
    fc.string({ unit: "binary", maxLength: 80 }),
    fc.string({ unit: "grapheme", minLength: 4000, maxLength: 4200 }),
    fc.constantFrom("node:20", "127.0.0.1:5000/app@sha256:" + "a".repeat(64), "oci:/x:y", "docker-archive:/a.tar", " ", "\t"),
    fc.string({ unit: fc.constantFrom("a", "é", "\u{1F600}", "\n", "\u0000", "\uDC00", " "), maxLength: 2100 }),
    fc.tuple(fc.constantFrom("oci:/", "docker-archive:/"), fc.string({ unit: fc.constantFrom("a", "é", "\u{1F600}", ":", "\uDC00", " "), maxLength: 2100 })).map(([a, b]) => a + b),
  );
  fc.assert(
    fc.property(image, (value) => {
      const acceptable = storeTakes(value);
      try {
        const spec = parseMicrovmSpec({ kernel, image: value });
        return acceptable && spec.image === value;
      } catch (err) {
        return !acceptable && err instanceof ValidationError && err.field === "image";
      }
    }),
    { numRuns: 1000 },
  );
  t.pass();
});

test("an image on the default kernel is run by the guest agent (agent: true, with args, env, cwd, user); with the spec's kernel or agent: false it is not", (t) => {
  const cache = join(dir, "agent-kernel-cache");
  mkdirSync(join(cache, "fedcba9876543210"), { recursive: true });
  writeFileSync(join(cache, "fedcba9876543210", "vmlinux"), "x");
  symlinkSync("fedcba9876543210", join(cache, "default"));
  const k = join(cache, "fedcba9876543210", "vmlinux");
  const full = { image: "default", args: ["sh", "-c", "exit 7"], env: { A: "b c" }, cwd: "/src", user: "1000:1000" };
  t.deepEqual(parseMicrovmSpec(full, { kernelCache: cache }), { kernel: k, ...full, agent: true });
  t.deepEqual(parseMicrovmSpec({ image: "default" }, { kernelCache: cache }), { kernel: k, image: "default", agent: true });
  // Read back (the stored spec has its kernel): still the agent's.
  t.deepEqual(parseMicrovmSpec({ kernel: k, image: "default", agent: true }), { kernel: k, image: "default", agent: true });
  t.deepEqual(parseMicrovmSpec({ kernel, image: "default" }), { kernel, image: "default" }, "a kernel of the spec's boots the image's disks with its own init");
  t.deepEqual(parseMicrovmSpec({ image: "default", agent: false }, { kernelCache: cache }), { kernel: k, image: "default", agent: false });
  t.is(fieldOf(t, { kernel, image: "default", args: ["sh"] }), "args");
  t.is(fieldOf(t, { kernel, agent: true }), "agent");
  t.is(fieldOf(t, { kernel, image: "default", agent: true, initrd: kernel }), "initrd");
  t.is(fieldOf(t, { kernel, image: "default", agent: true, args: [] }), "args");
  t.is(fieldOf(t, { kernel, image: "default", agent: true, cwd: "relative" }), "cwd");
  t.is(fieldOf(t, { kernel, image: "default", agent: true, user: "a b" }), "user");
  t.is(fieldOf(t, { kernel, image: "default", agent: true, env: { "A=B": "c" } }), "env.A=B");
});

// ---- mounts, copyOut -------------------------------------------------------------------

const agentSpec = { kernel, image: "default", agent: true };
const workspace = join(dir, "workspace");
mkdirSync(workspace);

test("mounts and copyOut, with the agent: kept checked and normalised (no trailing slash, a copyOut path once), idempotent", (t) => {
  const input = {
    ...agentSpec,
    mounts: [
      { source: workspace, destination: "/src/" },
      { source: disk, destination: "/etc//app.conf", readOnly: true },
    ],
    copyOut: ["/src/out/", "/src/out", "/src/./report.txt", "/日本語/结果"],
  };
  const spec = parseMicrovmSpec(input);
  t.deepEqual(spec.mounts, [
    { source: workspace, destination: "/src" },
    { source: disk, destination: "/etc/app.conf", readOnly: true },
  ]);
  t.deepEqual(spec.copyOut, ["/src/out", "/src/report.txt", "/日本語/结果"]);
  t.deepEqual(parseMicrovmSpec(JSON.parse(JSON.stringify(spec))), spec);
  t.deepEqual(parseMicrovmSpec({ ...agentSpec, mounts: [], copyOut: [] }), { ...agentSpec, mounts: [], copyOut: [] });
  // A source that is a symlink is taken (the copy follows it).
  const link = join(dir, "workspace-link");
  symlinkSync(workspace, link);
  t.is(parseMicrovmSpec({ ...agentSpec, mounts: [{ source: link, destination: "/w" }] }).mounts?.[0]?.source, link);
});

test("bad mounts are refused naming the field: shape, paths, NUL, huge, relative, '..', '/', duplicates, what cannot be copied, too many", (t) => {
  const m = (mounts: unknown) => fieldOf(t, { ...agentSpec, mounts });
  const huge = `/${"x".repeat(5000)}`;
  t.is(m("/src"), "mounts");
  t.is(m({ source: workspace, destination: "/src" }), "mounts");
  t.is(m(null), "mounts");
  t.is(m(["x"]), "mounts[0]");
  t.is(m([null]), "mounts[0]");
  t.is(m([{ source: workspace, destination: "/a" }, []]), "mounts[1]");
  t.is(m([{ source: workspace, destination: "/a", rw: true }]), "mounts[0].rw");
  t.is(m([{ destination: "/a" }]), "mounts[0].source");
  t.is(m([{ source: "relative/dir", destination: "/a" }]), "mounts[0].source");
  t.is(m([{ source: join(dir, "no-such-dir"), destination: "/a" }]), "mounts[0].source");
  t.is(m([{ source: `${workspace}\0x`, destination: "/a" }]), "mounts[0].source");
  t.is(m([{ source: huge, destination: "/a" }]), "mounts[0].source");
  t.is(m([{ source: 42, destination: "/a" }]), "mounts[0].source");
  t.is(m([{ source: "/dev/null", destination: "/a" }]), "mounts[0].source", "a device is neither a directory nor a file");
  t.is(m([{ source: workspace }]), "mounts[0].destination");
  t.is(m([{ source: workspace, destination: "a" }]), "mounts[0].destination");
  t.is(m([{ source: workspace, destination: "/a/../../etc" }]), "mounts[0].destination");
  t.is(m([{ source: workspace, destination: "/" }]), "mounts[0].destination");
  t.is(m([{ source: workspace, destination: "//" }]), "mounts[0].destination");
  t.is(m([{ source: workspace, destination: "/a\0" }]), "mounts[0].destination");
  t.is(m([{ source: workspace, destination: huge }]), "mounts[0].destination");
  t.is(m([{ source: workspace, destination: "/a" }, { source: disk, destination: "/a/" }]), "mounts[1].destination");
  t.is(m([{ source: workspace, destination: "/a", readOnly: "yes" }]), "mounts[0].readOnly");
  t.is(m(Array.from({ length: 65 }, (_, i) => ({ source: workspace, destination: `/m${i}` }))), "mounts");
  t.notThrows(() => parseMicrovmSpec({ ...agentSpec, mounts: Array.from({ length: 64 }, (_, i) => ({ source: workspace, destination: `/m${i}` })) }));
  const err = t.throws(() => parseMicrovmSpec({ ...agentSpec, mounts: [{ source: "/dev/null", destination: "/a" }] }), { instanceOf: ValidationError });
  t.regex(err?.message ?? "", /neither a directory nor a regular file/);
});

test("bad copyOut paths are refused naming the field: non-array, non-string, NUL, huge, relative, '..', '/', too many", (t) => {
  const c = (copyOut: unknown) => fieldOf(t, { ...agentSpec, copyOut });
  t.is(c("/out"), "copyOut");
  t.is(c({ 0: "/out" }), "copyOut");
  t.is(c(null), "copyOut");
  t.is(c([42]), "copyOut[0]");
  t.is(c(["/ok", null]), "copyOut[1]");
  t.is(c([["/nested"]]), "copyOut[0]");
  t.is(c(["out"]), "copyOut[0]");
  t.is(c([""]), "copyOut[0]");
  t.is(c(["./out"]), "copyOut[0]");
  t.is(c(["/a/../etc/shadow"]), "copyOut[0]");
  t.is(c(["/.."]), "copyOut[0]");
  t.is(c(["/"]), "copyOut[0]");
  t.is(c(["///"]), "copyOut[0]");
  t.is(c(["/out\0/x"]), "copyOut[0]");
  t.is(c([`/${"y".repeat(5000)}`]), "copyOut[0]");
  t.is(c(Array.from({ length: 65 }, (_, i) => `/o${i}`)), "copyOut");
  t.notThrows(() => parseMicrovmSpec({ ...agentSpec, copyOut: [`/${"y".repeat(4000)}`] }));
});

test("mounts and copyOut on a VM without the agent: INVALID_ARGUMENT naming the field (nothing to copy with)", (t) => {
  for (const [input, field] of [
    [{ kernel, mounts: [{ source: workspace, destination: "/src" }] }, "mounts"],
    [{ kernel, copyOut: ["/out"] }, "copyOut"],
    [{ kernel, image: "default", copyOut: ["/out"] }, "copyOut"],
    [{ kernel, image: "default", agent: false, mounts: [] }, "mounts"],
  ] as const) {
    const err = t.throws(() => parseMicrovmSpec(input), { instanceOf: ValidationError });
    t.is(err?.code, "INVALID_ARGUMENT");
    t.is(err?.field, field);
    t.regex(err?.message ?? "", /copied by the guest agent, and this VM has none/);
  }
});

test("property: any string as a copyOut path is kept, normalised, exactly when it is an absolute path without NUL or '..', other than '/', of at most 4096 bytes; else refused naming copyOut[0]", (t) => {
  const path = fc.oneof(
    fc.string({ unit: "binary", maxLength: 40 }),
    fc.array(fc.constantFrom("a", "..", ".", "", "日本", "\0", "b c"), { maxLength: 6 }).map((parts) => `/${parts.join("/")}`),
    fc.nat({ max: 6000 }).map((n) => `/${"x".repeat(n)}`),
  );
  fc.assert(
    fc.property(path, (value) => {
      const normalised = posix.normalize(value).replace(/\/+$/, "") || "/";
      const acceptable = value.startsWith("/") && !value.includes("\0") && !value.split("/").includes("..") && Buffer.byteLength(value) <= 4096 && normalised !== "/";
      try {
        const spec = parseMicrovmSpec({ ...agentSpec, copyOut: [value] });
        return acceptable && spec.copyOut?.[0] === normalised;
      } catch (err) {
        return !acceptable && err instanceof ValidationError && err.field === "copyOut[0]";
      }
    }),
    { numRuns: 1000 },
  );
  t.pass();
});
