import { spawnSync } from "node:child_process";
import { closeSync, constants, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
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

/** The shell's own lookup, over PATH plus the sbin directories, as the report promises. */
const onHost = (name: string) => spawnSync("sh", ["-c", `command -v ${name}`], { env: { PATH: `${process.env.PATH}:/usr/local/sbin:/usr/sbin:/sbin` } }).status === 0;

test("doctor --json reports KVM, and what each built-in target declares it needs as this host has it", (t) => {
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

  // The built-in targets, in the daemon's order, each from its registration's requires.
  t.deepEqual(
    report.targets.map((x) => [x.target, x.plugin]),
    ["oci", "microvm", "lxc", "docker", "aws-ec2"].map((name) => [name, `vmctl-plugin-${name}`]),
  );
  const of = (target: string) => report.targets.find((x) => x.target === target);
  for (const target of report.targets) {
    t.true(target.declared, `${target.target} declares its requirements`);
    t.is(target.problem, undefined);
    t.is(target.ready, target.requirements.every((r) => r.met || r.requirement.optional), target.target);
  }
  const runc = of("oci")?.requirements[0];
  t.is(runc?.name, "runc or crun");
  t.is(runc?.met, onHost("runc") || onHost("crun"));
  // scripts/setup installs runc; the report finds it and reads its version.
  t.regex(runc?.version ?? "", /runc version \d+\.\d+/);
  t.deepEqual(of("lxc")?.requirements.map((r) => [r.name, r.met, r.requirement.optional ?? false]), [
    ["lxc-execute", onHost("lxc-execute"), false],
    ["lxc-stop", onHost("lxc-stop"), false],
    ["lxc-info", onHost("lxc-info"), false],
    ["lxc-attach", onHost("lxc-attach"), true],
    ["lxc-freeze", onHost("lxc-freeze"), true],
  ]);
  t.deepEqual(of("microvm")?.requirements.map((r) => r.name), ["vmctl-vmm", "/dev/kvm (rw)"]);
  t.is(of("microvm")?.requirements[1]?.met, kvmOpens);
  t.deepEqual(of("docker")?.requirements.map((r) => [r.requirement.kind, r.name]), [["socket", "/var/run/docker.sock"]]);
  t.deepEqual(of("aws-ec2")?.requirements, []);
  // What vmctl needs whatever the target: the image store's mkfs.ext4 (scripts/setup installs e2fsprogs).
  t.deepEqual(report.host.map((r) => [r.area, r.name]), [
    ["images", "mkfs.ext4"],
    ["images", "/bin/busybox"],
    ["networks", "/usr/lib/x86_64-linux-gnu/libnftables.so.1"],
    ["kernel", "/usr/src/linux-source-6.1.tar.xz"],
  ]);
  t.like(report.host[0], { met: true, found: "/usr/sbin/mkfs.ext4" });
});

/** A plugin package in `dir` registering target `name` with `requires`; its init leaves a mark if anyone calls it. */
function writePlugin(dir: string, name: string, requires: unknown): string {
  const pkg = join(dir, `vmctl-plugin-${name}`);
  mkdirSync(pkg, { recursive: true });
  writeFileSync(
    join(pkg, "package.json"),
    JSON.stringify({ name: `vmctl-plugin-${name}`, version: "0.1.0", type: "module", vmctl: { entry: "./index.js", targets: [name] }, engines: { vmctl: "^0.1.0" } }),
  );
  writeFileSync(
    join(pkg, "index.js"),
    `import { writeFileSync } from "node:fs";
export default { name: "vmctl-plugin-${name}", targets: [{ target: "${name}", requires: ${JSON.stringify(requires)},
  init: () => { writeFileSync(${JSON.stringify(join(pkg, "init-called"))}, ""); throw new Error("doctor must not call init"); } }] };
`,
  );
  return pkg;
}

const NEEDY = [
  { kind: "binary", name: "vmctl-doctor-no-such-tool", option: "tool", package: "vmctl-doctor-tools", why: "runs the needy workloads" },
  { kind: "binary", name: "sh", package: "dash", why: "its shim" },
  { kind: "file", path: "/proc/filesystems", contains: "vmctlfs", optional: true, fix: "modprobe vmctlfs", why: "the fast path" },
];

test("doctor --plugin PATH lists what a third-party target declares: a missing binary with its package, without calling init", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "vmctl-doctor-plugin-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const needy = writePlugin(dir, "needy", NEEDY);
  const malformed = writePlugin(dir, "malformed", [{ kind: "binary", name: "x", package: "x1" }]);

  const result = vmctl("doctor", "--json", "--plugin", needy, "--plugin", malformed);
  t.is(result.status, 0, result.stderr);
  const report = JSON.parse(result.stdout) as HostReport;
  const target = report.targets.find((x) => x.target === "needy");
  t.like(target, { plugin: needy, declared: true, ready: false });
  t.like(target?.requirements[0], {
    name: "vmctl-doctor-no-such-tool",
    met: false,
    problem: "not found on PATH or in /usr/local/sbin, /usr/sbin, /sbin",
    fix: "apt-get install vmctl-doctor-tools",
  });
  t.like(target?.requirements[1], { name: "sh", met: true });
  t.like(target?.requirements[2], { name: "/proc/filesystems: vmctlfs", met: false, problem: "does not list vmctlfs", fix: "modprobe vmctlfs" });
  t.like(report.targets.find((x) => x.target === "malformed"), {
    ready: false,
    requirements: [],
    problem: "its registration's targets[0].requires[0].why: must be a string",
  });
  t.false(existsSync(join(needy, "init-called")), "doctor called the target's init");
  t.true(report.targets.some((x) => x.target === "oci"), "the built-ins are listed too");

  const text = vmctl("doctor", "--plugin", needy, "--plugin", malformed);
  t.is(text.status, 0, text.stderr);
  t.regex(
    text.stdout,
    /^needy +vmctl-doctor-no-such-tool +MISSING +runs the needy workloads: not found on PATH or in \/usr\/local\/sbin, \/usr\/sbin, \/sbin; fix: apt-get install vmctl-doctor-tools$/m,
  );
  t.regex(text.stdout, /^needy +sh +ok +\/\S*sh$/m);
  t.regex(text.stdout, /^needy +\/proc\/filesystems: vmctlfs +missing \(optional\) +the fast path: does not list vmctlfs; fix: modprobe vmctlfs$/m);
  t.regex(text.stdout, /^malformed +- +UNKNOWN +.*vmctl-plugin-malformed: its registration's targets\[0\]\.requires\[0\]\.why: must be a string$/m);
});

test("doctor reads the daemon's config: its plugins (relative to the file) and the target options a requirement names", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "vmctl-doctor-config-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writePlugin(dir, "needy", NEEDY);
  const config = join(dir, "config.json");
  writeFileSync(config, JSON.stringify({ plugins: ["./vmctl-plugin-needy"], targets: { needy: { tool: "/bin/sh" } } }));
  const result = vmctlWith({ VMCTL_CONFIG: config }, "doctor", "--json");
  t.is(result.status, 0, result.stderr);
  const target = (JSON.parse(result.stdout) as HostReport).targets.find((x) => x.target === "needy");
  t.like(target, { plugin: join(dir, "vmctl-plugin-needy"), ready: true });
  t.like(target?.requirements[0], { met: true, found: "/bin/sh" });

  const gone = vmctl("doctor", "--json", "--plugin", join(dir, "vmctl-plugin-gone"));
  t.is(gone.status, 0, gone.stderr);
  t.regex((JSON.parse(gone.stdout) as HostReport).targets.find((x) => x.plugin.endsWith("vmctl-plugin-gone"))?.problem ?? "", /^plugin not loaded: /);

  writeFileSync(config, JSON.stringify({ plugins: "./vmctl-plugin-needy" }));
  const bad = vmctl("doctor", "--config", config);
  t.is(bad.status, 2);
  t.is(bad.stderr, `vmctl: ${config}: plugins: must be an array of plugin package names or paths\n`);
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
  t.regex(result.stdout, /^TARGET +REQUIREMENT +STATUS +DETAIL$/m);
  t.regex(result.stdout, /^oci +runc or crun +(ok|MISSING) /m);
  t.regex(result.stdout, /^AREA +REQUIREMENT +STATUS +DETAIL$/m);
  t.regex(result.stdout, /^images +mkfs\.ext4 +(ok|MISSING) /m);
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
