import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { VmctlError } from "@vmctl/core/contract";
import { requireVmmBinary } from "@vmctl/vmm-client";
import { DEFAULT_BOOT_ARGS, MicrovmFactory } from "./factory.js";
import registration, { initMicrovm } from "./index.js";
import { MemoryLogger, requireVmHost } from "./testing/context.js";

const dir = mkdtempSync(join(tmpdir(), "vmctl-mvm-index-"));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

test("the registration is plain data for one target", (t) => {
  t.is(registration.name, "vmctl-plugin-microvm");
  t.deepEqual(registration.targets.map((r) => r.target), ["microvm"]);
});

test("init finds vmctl-vmm and KVM and claims honest capabilities", async (t) => {
  requireVmHost();
  const factory = await registration.targets[0]!.init({ stateDir: join(dir, "a"), options: {}, log: new MemoryLogger() });
  t.is(factory?.target, "microvm");
  t.deepEqual(factory?.capabilities, { exec: true, pause: true, network: true, volumes: true, logsFollow: true, copy: true });
});

test("init is skipped (undefined, with a reason logged) when vmctl-vmm is not there", (t) => {
  const log = new MemoryLogger();
  t.is(initMicrovm({ stateDir: join(dir, "b"), options: { vmm: join(dir, "no-such-vmm") }, log }), undefined);
  t.true(log.lines.some((l) => l.level === "info" && /skipped: .*no-such-vmm/.test(l.message)));
});

test("init is skipped when KVM is unusable", (t) => {
  const log = new MemoryLogger();
  t.is(initMicrovm({ stateDir: join(dir, "c"), options: { vmm: requireVmmBinary(), kvm: join(dir, "no-kvm") }, log }), undefined);
  t.true(log.lines.some((l) => l.level === "info" && /skipped: .*no-kvm is not usable/.test(l.message)));
});

test("specFromRun: the image is the kernel, the command words go on the command line, spec fields win", (t) => {
  const kernel = join(dir, "vmlinux");
  writeFileSync(kernel, "x");
  const factory = new MicrovmFactory({ binary: "/bin/false", stateDir: dir, log: new MemoryLogger() });
  const spec = factory.specFromRun({ image: kernel, command: ["vmctl.test=exit_code", "vmctl.exit=7"], env: {}, mounts: [], copyOut: [], spec: {} });
  t.deepEqual(spec, { kernel, bootArgs: `${DEFAULT_BOOT_ARGS} vmctl.test=exit_code vmctl.exit=7` });
  t.notThrows(() => factory.validate(spec));
  t.deepEqual(factory.specFromRun({ image: kernel, command: [], env: {}, mounts: [], copyOut: [], spec: {} }), { kernel, bootArgs: DEFAULT_BOOT_ARGS });
  t.deepEqual(
    factory.specFromRun({ image: "/ignored", command: ["x=1"], env: { A: "b" }, mounts: [], copyOut: [], spec: { kernel, bootArgs: "console=ttyS0", memoryMib: 32 } }),
    { kernel, bootArgs: "console=ttyS0 A=b x=1", memoryMib: 32 },
  );
  t.deepEqual(factory.specFromRun({ command: [], env: {}, mounts: [], copyOut: [], spec: { kernel, bootArgs: "quiet" } }), { kernel, bootArgs: "quiet" });
  t.throws(() => factory.specFromRun({ image: kernel, command: [], env: { A: "b c" }, mounts: [], copyOut: [], spec: {} }), { message: /env\.A/ });
});

test("specFromRun: an image that is not an absolute path is an image reference, booted with the default kernel unless the spec names one", (t) => {
  const kernel = join(dir, "vmlinux");
  writeFileSync(kernel, "x");
  const factory = new MicrovmFactory({ binary: "/bin/false", stateDir: dir, log: new MemoryLogger() });
  // On the default kernel the guest agent runs the image: the words are the workload's args, env its env.
  t.deepEqual(factory.specFromRun({ image: "node:20", command: ["npm", "test"], env: { CI: "1 2" }, mounts: [], copyOut: [], spec: {} }), {
    image: "node:20",
    args: ["npm", "test"],
    env: { CI: "1 2" },
  });
  t.deepEqual(factory.specFromRun({ image: "node:20", command: [], env: {}, mounts: [], copyOut: [], spec: { cwd: "/src" } }), { image: "node:20", cwd: "/src" });
  // agent: false keeps the words on the kernel's command line, as before the agent.
  t.deepEqual(factory.specFromRun({ image: "node:20", command: ["init=/bin/sh"], env: {}, mounts: [], copyOut: [], spec: { agent: false } }), {
    image: "node:20",
    agent: false,
    bootArgs: `${DEFAULT_BOOT_ARGS} init=/bin/sh`,
  });
  t.deepEqual(factory.specFromRun({ image: "oci:/srv/layout:v1", command: [], env: {}, mounts: [], copyOut: [], spec: { kernel, diskSizeMib: 64 } }), {
    image: "oci:/srv/layout:v1",
    kernel,
    diskSizeMib: 64,
    bootArgs: DEFAULT_BOOT_ARGS,
  });
  t.deepEqual(factory.validate(factory.specFromRun({ image: "relative/vmlinux", command: [], env: {}, mounts: [], copyOut: [], spec: { kernel } })), {
    kernel,
    image: "relative/vmlinux",
    bootArgs: DEFAULT_BOOT_ARGS,
  });
  // An explicit spec.image wins over the shorthand's.
  t.is((factory.specFromRun({ image: "a:1", command: [], env: {}, mounts: [], copyOut: [], spec: { image: "b:2" } }) as { image: string }).image, "b:2");
});

test("specFromRun: the run's mounts and copyOut are added after the spec's own; a kernel-only VM refuses them naming the field", (t) => {
  const kernel = join(dir, "vmlinux-ws");
  writeFileSync(kernel, "x");
  const source = mkdtempSync(join(dir, "src-"));
  const factory = new MicrovmFactory({ binary: "/bin/false", stateDir: dir, log: new MemoryLogger() });
  const mounts = [{ source, destination: "/src", readOnly: true }];
  t.deepEqual(factory.specFromRun({ image: "node:20", command: ["make"], env: {}, mounts, copyOut: ["/src/out"], spec: {} }), {
    image: "node:20",
    mounts,
    copyOut: ["/src/out"],
    args: ["make"],
  });
  // The spec's own first; the run's copyOut paths are kept whatever the spec says (the caller copies them out).
  const own = { source: kernel, destination: "/etc/k" };
  const explicit = factory.specFromRun({ image: "node:20", command: [], env: {}, mounts, copyOut: ["/src/out"], spec: { kernel, agent: true, mounts: [own], copyOut: ["/elsewhere", "/src/out"] } });
  t.deepEqual(factory.validate(explicit), { kernel, image: "node:20", agent: true, bootArgs: DEFAULT_BOOT_ARGS, mounts: [own, ...mounts], copyOut: ["/elsewhere", "/src/out"] });
  // A spec field that is no list is the spec's to refuse.
  const err = t.throws(() => factory.validate(factory.specFromRun({ image: "node:20", command: [], env: {}, mounts: [], copyOut: ["/o"], spec: { kernel, agent: true, copyOut: "/x" } })), { instanceOf: VmctlError });
  t.is(err?.details.field, "copyOut");
  // None given: the spec says nothing of them.
  t.false("mounts" in (factory.specFromRun({ image: "node:20", command: [], env: {}, mounts: [], copyOut: [], spec: {} }) as object));
  // A kernel (or agent: false) has no agent to copy with.
  for (const spec of [factory.specFromRun({ image: kernel, command: [], env: {}, mounts, copyOut: [], spec: {} }), factory.specFromRun({ image: "node:20", command: [], env: {}, mounts: [], copyOut: ["/out"], spec: { kernel, agent: false } })]) {
    const err = t.throws(() => factory.validate(spec), { instanceOf: VmctlError });
    t.is(err?.code, "INVALID_ARGUMENT");
    t.regex(String(err?.details.field), /^(mounts|copyOut)$/);
  }
});

test("vmctl run --target microvm without an image: the factory's kernel cache gives the default, or a precondition error", (t) => {
  const kernelCache = join(dir, "kernels");
  const factory = new MicrovmFactory({ binary: "/bin/false", stateDir: dir, log: new MemoryLogger(), kernelCache });
  const spec = factory.specFromRun({ command: ["vmctl.test=exit_code"], env: {}, mounts: [], copyOut: [], spec: {} });
  t.deepEqual(spec, { bootArgs: `${DEFAULT_BOOT_ARGS} vmctl.test=exit_code` });
  const err = t.throws(() => factory.validate(spec), { instanceOf: VmctlError });
  t.is(err?.code, "FAILED_PRECONDITION");
  t.is(err?.details.field, "kernel");
  // Built after the factory was made (the daemon runs on): found at the next validate.
  const vmlinux = join(kernelCache, "00000000000000aa", "vmlinux");
  mkdirSync(join(kernelCache, "00000000000000aa"), { recursive: true });
  writeFileSync(vmlinux, "x");
  symlinkSync("00000000000000aa", join(kernelCache, "default"));
  t.deepEqual(factory.validate(spec), { kernel: vmlinux, bootArgs: `${DEFAULT_BOOT_ARGS} vmctl.test=exit_code` });
});
