import { spawnSync } from "node:child_process";
import { closeSync, constants, existsSync, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import test from "ava";
import type { HostReport } from "../doctor/host-report.js";

const bin = fileURLToPath(new URL("../../dist/bin.cjs", import.meta.url));

function vmctl(...args: string[]) {
  return vmctlWith({}, ...args);
}

function vmctlWith(env: NodeJS.ProcessEnv, ...args: string[]) {
  const result = spawnSync(process.execPath, [bin, ...args], { encoding: "utf8", timeout: 30_000, env: { ...process.env, ...env } });
  if (result.error) throw result.error;
  return result;
}

test("doctor --json reports KVM and target dependencies as this host has them", (t) => {
  const result = vmctl("doctor", "--json");
  t.is(result.status, 0, result.stderr);
  const report = JSON.parse(result.stdout) as HostReport;

  let kvmOpens = true;
  try {
    closeSync(openSync("/dev/kvm", constants.O_RDWR));
  } catch {
    kvmOpens = false;
  }
  t.is(report.kvm.available, kvmOpens);
  t.is(report.kvm.apiVersion, kvmOpens ? 12 : undefined);

  for (const name of ["runc", "crun", "lxc-start", "dockerd", "skopeo", "mkfs.ext4"]) {
    const dep = report.dependencies.find((d) => d.name === name);
    t.truthy(dep, `${name} missing from the report`);
    // The shell's own lookup, over PATH plus the sbin directories, as the report promises.
    const found = spawnSync("sh", ["-c", `command -v ${name}`], { env: { PATH: `${process.env.PATH}:/usr/local/sbin:/usr/sbin:/sbin` } }).status === 0;
    t.is(dep?.present, found, `${name}: wrong presence`);
  }
  // scripts/setup installs runc; the report must find it and read its version.
  const runc = report.dependencies.find((d) => d.name === "runc");
  t.regex(runc?.version ?? "", /runc version \d+\.\d+/);
  // scripts/setup installs the moto server the aws-ec2 tests use.
  t.true(report.dependencies.find((d) => d.name === "moto_server")?.present, "moto_server not found: run scripts/setup");
  t.deepEqual([...new Set(report.dependencies.map((d) => d.target))].sort(), ["aws-ec2", "docker", "images", "lxc", "microvm", "oci"]);
});

test("doctor says what guests this host's KVM runs, and that the guest kernel is missing from an empty cache", (t) => {
  const cache = mkdtempSync(join(tmpdir(), "vmctl-doctor-kernel-"));
  t.teardown(() => rmSync(cache, { recursive: true, force: true }));
  const result = vmctlWith({ VMCTL_KERNEL_CACHE: cache }, "doctor", "--json");
  t.is(result.status, 0, result.stderr);
  const report = JSON.parse(result.stdout) as HostReport;
  // These machines are PVM hosts (DESIGN.md); a hardware host answers svm or vmx.
  if (existsSync("/sys/module/kvm_pvm")) {
    t.true(report.kvm.pvm);
    t.is(report.guests.kvm, "pvm");
    t.false(report.guests.linuxGuests);
    t.regex(report.guests.summary, /Linux guests cannot boot on this KVM, only vmctl's test guests; real Linux is proven through the nested test host \(tests\/nested\/, run by npm test\)/);
  } else {
    t.true(["svm", "vmx", "unknown"].includes(report.guests.kvm), report.guests.kvm);
    t.true(report.guests.linuxGuests);
  }
  t.deepEqual(report.guestKernel, { present: false, cache, problem: "none built: run `vmctl kernel build`" });

  const text = vmctlWith({ VMCTL_KERNEL_CACHE: cache }, "doctor");
  t.is(text.status, 0, text.stderr);
  const printed = text.stdout.split("\n");
  t.true(printed.includes(`Guests: ${report.guests.summary}`), text.stdout);
  t.true(printed.includes(`Guest kernel: missing (${cache}): none built: run \`vmctl kernel build\``), text.stdout);
});

test("doctor reports a broken kernel cache and still succeeds: it reports, it does not fail", (t) => {
  const file = join(tmpdir(), `vmctl-doctor-not-a-dir-${process.pid}`);
  writeFileSync(file, "");
  t.teardown(() => rmSync(file, { force: true }));
  const result = vmctlWith({ VMCTL_KERNEL_CACHE: file }, "doctor", "--json");
  t.is(result.status, 0, result.stderr);
  t.deepEqual((JSON.parse(result.stdout) as HostReport).guestKernel, { present: false, cache: file, problem: `kernel cache ${file}: not a directory` });
});

test("doctor prints a readable table", (t) => {
  const result = vmctl("doctor");
  t.is(result.status, 0, result.stderr);
  t.regex(result.stdout, /^KVM: \/dev\/kvm /);
  t.regex(result.stdout, /^TARGET +DEPENDENCY +STATUS +DETAIL$/m);
  t.regex(result.stdout, /^oci +runc +(present|MISSING) /m);
});

test("doctor --bogus prints one clear line and exits non-zero", (t) => {
  const result = vmctl("doctor", "--bogus");
  t.is(result.status, 2);
  t.is(result.stdout, "");
  const lines = result.stderr.trimEnd().split("\n");
  t.is(lines.length, 1, result.stderr);
  t.regex(lines[0] ?? "", /^vmctl: unknown option '--bogus'/);
});

test("an unknown verb is a usage error too", (t) => {
  const result = vmctl("frobnicate");
  t.is(result.status, 2);
  t.regex(result.stderr, /^vmctl: unknown command 'frobnicate'/);
});

test("--version and --help succeed", (t) => {
  t.is(vmctl("--version").status, 0);
  const help = vmctl("--help");
  t.is(help.status, 0);
  t.regex(help.stdout, /doctor/);
});
