// What the built-in targets and vmctl itself declare they need on the host: every fix
// that names a Debian package names a real one that provides the very thing declared
// (scripts/setup installs them all here, so dpkg answers), and the rest say how to fix it.
import { spawnSync } from "node:child_process";
import test from "ava";
import type { HostRequirement } from "@vmctl/core/contract";
import { parseRequirements } from "@vmctl/core/target-kit";
import { HOST_REQUIREMENTS } from "./host-requirements.js";
import { targetRequirements } from "./target-requirements.js";

const dpkg = (...args: string[]) => {
  const r = spawnSync("dpkg", args, { encoding: "utf8" });
  return { ok: r.status === 0, out: r.stdout };
};

/** Why `req` is not provided by its package, or undefined when it is (or names none). */
function packageProblem(req: HostRequirement): string | undefined {
  const pkg = req.package;
  if (pkg === undefined) return req.fix === undefined ? "neither a package nor a fix" : undefined;
  if (!dpkg("-s", pkg).ok) return `${pkg} is not an installed Debian package (scripts/setup installs it)`;
  const files = dpkg("-L", pkg).out.split("\n");
  switch (req.kind) {
    case "binary":
      // /bin and /usr/bin are one on Debian 12 (merged /usr): the directory may be listed either way.
      return files.some((f) => new RegExp(`/s?bin/${req.name.replace(/[.+]/g, "\\$&")}$`).test(f)) ? undefined : `${pkg} installs no ${req.name}`;
    case "file":
      return files.includes(req.path) || dpkg("-S", req.path).out.startsWith(`${pkg}: `) ? undefined : `${pkg} installs no ${req.path}`;
    default:
      // A socket or device is made at run time, not installed: the package is the daemon or driver behind it.
      return undefined;
  }
}

test("each built-in target's requires is well formed, and each package it names is a real one providing it", async (t) => {
  const targets = await targetRequirements();
  t.deepEqual(targets.map((x) => x.target), ["oci", "microvm", "lxc", "docker", "aws-ec2"]);
  const packages: Record<string, string[]> = {};
  for (const target of targets) {
    t.is(target.problem, undefined, target.target);
    const declared = target.requirements.map((r) => r.requirement);
    t.deepEqual(parseRequirements(JSON.parse(JSON.stringify(declared))), declared, `${target.target}: requires survives JSON (it is data)`);
    for (const req of declared) t.is(packageProblem(req), undefined, `${target.target}: ${JSON.stringify(req)}`);
    packages[target.target] = declared.map((r) => r.package ?? `(fix: ${r.fix})`);
  }
  t.deepEqual(packages, {
    oci: ["runc"],
    microvm: ["(fix: npm run build (builds vmctl-vmm in the checkout), or put vmctl-vmm on PATH)", "(fix: load kvm_amd or kvm_intel (modprobe), and give the daemon's user read-write access (the kvm group))"],
    lxc: ["lxc", "lxc", "lxc", "lxc", "lxc"],
    docker: ["docker.io"],
    "aws-ec2": [],
  });
});

test("what vmctl needs whatever the target is well formed, and its packages provide it", (t) => {
  const declared = HOST_REQUIREMENTS.map((h) => h.requirement);
  t.deepEqual(parseRequirements(declared), declared);
  for (const req of declared) t.is(packageProblem(req), undefined, JSON.stringify(req));
  t.deepEqual(
    declared.map((r) => r.package),
    ["e2fsprogs", "busybox-static", "libnftables1", "linux-source-6.1"],
  );
});
