import { spawnSync } from "node:child_process";
import { closeSync, constants, openSync } from "node:fs";
import { fileURLToPath } from "node:url";
import test from "ava";
import type { HostReport } from "../doctor/host-report.js";

const bin = fileURLToPath(new URL("../../dist/bin.cjs", import.meta.url));

function vmctl(...args: string[]) {
  const result = spawnSync(process.execPath, [bin, ...args], { encoding: "utf8", timeout: 30_000 });
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
