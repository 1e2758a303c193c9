// The host requirements targets declare: the parser refuses what doctor could not read,
// naming the field; the evaluator is checked against this machine's real binaries,
// devices, /proc files and a unix socket it serves.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import type { HostRequirement } from "../contract/index.js";
import { evaluateRequirement, evaluateRequirements, parseRequirements, requirementFix, requirementName } from "./requirements.js";

const dir = mkdtempSync(join(tmpdir(), "vmctl-requirements-"));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

const why = "what it is for";

test("a binary on PATH is met, with where it is and, when asked, its version", async (t) => {
  const sh = await evaluateRequirement({ kind: "binary", name: "sh", package: "dash", why }, "t");
  t.true(sh.met);
  t.regex(sh.found ?? "", /^\/.*\/sh$/);
  t.is(sh.name, "sh");
  t.is(sh.problem, undefined);
  // node --version: a first line of output, read only when versions are asked for.
  const node = { kind: "binary", name: "vmctl-no-such-node", paths: [process.execPath], package: "nodejs", why, versionArgs: ["--version"] } as const;
  t.is((await evaluateRequirement(node, "t")).version, undefined);
  t.like(await evaluateRequirement(node, "t", { versions: true }), { met: true, found: process.execPath, version: process.version });
});

test("a missing binary is not met, says where it looked and the fix; an alternative that exists will do", async (t) => {
  const missing = await evaluateRequirement({ kind: "binary", name: "vmctl-no-such-tool", package: "vmctl-tools", fix: "or build it", why }, "t");
  t.false(missing.met);
  t.is(missing.problem, "not found on PATH or in /usr/local/sbin, /usr/sbin, /sbin");
  t.is(missing.fix, "apt-get install vmctl-tools; or build it");
  const either = await evaluateRequirement({ kind: "binary", name: "vmctl-no-such-tool", or: ["sh"], package: "dash", why }, "t");
  t.true(either.met);
  t.is(either.name, "vmctl-no-such-tool or sh");
  const inDirs = await evaluateRequirement({ kind: "binary", name: "sh", package: "dash", why }, "t", { searchDirs: [dir] });
  t.is(inDirs.problem, `not found in ${dir}`);
});

test("the target's option and the environment variable name the binary: only it counts then", async (t) => {
  const req: HostRequirement = { kind: "binary", name: "vmctl-no-such-tool", option: "tool", env: "VMCTL_TEST_TOOL", fix: "build it", why };
  t.like(await evaluateRequirement(req, "mine", { options: { tool: "/bin/sh" } }), { met: true, found: "/bin/sh" });
  const plain = join(dir, "not-executable");
  writeFileSync(plain, "", { mode: 0o644 });
  t.like(await evaluateRequirement(req, "mine", { options: { tool: plain } }), {
    met: false,
    problem: `${plain} (targets.mine.tool) is not an executable file`,
  });
  t.like(await evaluateRequirement(req, "mine", { env: { VMCTL_TEST_TOOL: "/bin/sh" } }), { met: true, found: "/bin/sh" });
  t.like(await evaluateRequirement({ ...req, or: ["sh"] }, "mine", { env: { VMCTL_TEST_TOOL: join(dir, "nope") } }), {
    met: false,
    problem: `VMCTL_TEST_TOOL=${join(dir, "nope")} is not an executable file`,
  });
});

test("a device: opened with the access asked for; a missing one, or a file that is no device, is not met", async (t) => {
  t.like(await evaluateRequirement({ kind: "device", path: "/dev/null", access: "rw", fix: "mknod", why }, "t"), { met: true, found: "/dev/null", name: "/dev/null (rw)" });
  t.like(await evaluateRequirement({ kind: "device", path: "/dev/vmctl-no-such-device", access: "r", fix: "modprobe it", why }, "t"), {
    met: false,
    problem: "no such device",
    fix: "modprobe it",
  });
  const file = join(dir, "plain");
  writeFileSync(file, "");
  const notDevice = await evaluateRequirement({ kind: "device", path: "/dev/null", option: "device", access: "r", fix: "x", why }, "t", { options: { device: file } });
  t.like(notDevice, { met: false, problem: "not a device node", found: file });
});

test("an optional requirement that is missing is reported as such, and evaluateRequirements keeps the order", async (t) => {
  const reqs: HostRequirement[] = [
    { kind: "binary", name: "sh", package: "dash", why },
    { kind: "binary", name: "vmctl-no-such-tool", package: "vmctl-tools", optional: true, why: "a feature" },
  ];
  const [sh, optional] = await evaluateRequirements(reqs, "t");
  t.true(sh?.met);
  t.like(optional, { met: false, fix: "apt-get install vmctl-tools" });
  t.true(optional?.requirement.optional);
});

test("a kernel feature file: present, listing a word, or not", async (t) => {
  t.like(await evaluateRequirement({ kind: "file", path: "/proc/filesystems", contains: "proc", fix: "x", why }, "t"), { met: true, name: "/proc/filesystems: proc" });
  t.like(await evaluateRequirement({ kind: "file", path: "/proc/filesystems", contains: "vmctlfs", fix: "modprobe vmctlfs", why }, "t"), {
    met: false,
    problem: "does not list vmctlfs",
  });
  t.like(await evaluateRequirement({ kind: "file", path: "/sys/module/vmctl_no_such_module", fix: "modprobe", why }, "t"), { met: false, problem: "no such file" });
  t.like(await evaluateRequirement({ kind: "file", path: "/proc/self/status", fix: "mount /proc", why }, "t"), { met: true });
});

test("a socket: met while something answers on it; a missing one or a plain file is not", async (t) => {
  const path = join(dir, "answering.sock");
  const server = createServer((s) => s.end());
  await new Promise<void>((resolve) => server.listen(path, resolve));
  const req: HostRequirement = { kind: "socket", path, package: "docker.io", why };
  t.like(await evaluateRequirement(req, "t"), { met: true, found: path });
  await new Promise<void>((resolve) => server.close(() => resolve()));
  t.like(await evaluateRequirement(req, "t"), { met: false, problem: "no such socket (is the daemon running?)" });
  const file = join(dir, "not-a-socket");
  writeFileSync(file, "");
  t.like(await evaluateRequirement({ ...req, option: "socket" }, "t", { options: { socket: file } }), { met: false, problem: "not a socket" });
});

test("parseRequirements takes well-formed declarations as they are, and nothing declared as []", (t) => {
  const reqs: HostRequirement[] = [
    { kind: "binary", name: "runc", or: ["crun"], package: "runc", why, versionArgs: ["--version"] },
    { kind: "binary", name: "vmctl-vmm", option: "vmm", env: "VMCTL_VMM_BIN", paths: ["/opt/vmctl/bin/vmctl-vmm"], fix: "npm run build", why },
    { kind: "device", path: "/dev/kvm", access: "rw", option: "kvm", fix: "modprobe kvm_amd", why },
    { kind: "file", path: "/proc/filesystems", contains: "overlay", optional: true, fix: "modprobe overlay", why },
    { kind: "socket", path: "/var/run/docker.sock", option: "socket", package: "docker.io", fix: "start dockerd", why },
  ];
  t.deepEqual(parseRequirements(JSON.parse(JSON.stringify(reqs))), reqs);
  t.deepEqual(parseRequirements(undefined), []);
  t.deepEqual(reqs.map(requirementName), ["runc or crun", "vmctl-vmm", "/dev/kvm (rw)", "/proc/filesystems: overlay", "/var/run/docker.sock"]);
  t.is(requirementFix(reqs[4] as HostRequirement), "apt-get install docker.io; start dockerd");
});

test("parseRequirements refuses what doctor could not read, naming the field", (t) => {
  const ok = { kind: "binary", name: "runc", package: "runc", why };
  const cases: [unknown, string][] = [
    [{}, "requires: must be an array of host requirements"],
    [[null], "requires[0]: must be an object"],
    [[{ ...ok, kind: "service" }], "requires[0].kind: must be one of binary, device, file, socket"],
    [[ok, { ...ok, why: undefined }], "requires[1].why: must be a string"],
    [[{ ...ok, why: "two\nlines" }], "requires[0].why: must be one line"],
    [[{ ...ok, why: " " }], "requires[0].why: must not be empty"],
    [[{ ...ok, package: "Runc!" }], "requires[0].package: must be a Debian package name"],
    [[{ kind: "binary", name: "runc", why }], "requires[0].package: required when there is no fix (say how to get it)"],
    [[{ ...ok, name: "/usr/sbin/runc" }], "requires[0].name: must be a file name (letters, digits, _ + . -), not a path"],
    [[{ ...ok, or: ["crun", 3] }], "requires[0].or[1]: must be a string"],
    [[{ ...ok, paths: ["bin/runc"] }], "requires[0].paths[0]: must be an absolute, normalized path"],
    [[{ ...ok, env: "NOT-AN-ID" }], "requires[0].env: must be an identifier (letters, digits, _)"],
    [[{ ...ok, optional: "yes" }], "requires[0].optional: must be a boolean"],
    [[{ ...ok, path: "/usr/sbin/runc" }], "requires[0].path: unknown field"],
    [[{ kind: "device", path: "/tmp/kvm", access: "rw", fix: "x", why }], "requires[0].path: must be under /dev/"],
    [[{ kind: "device", path: "/dev/kvm", access: "w", fix: "x", why }], 'requires[0].access: must be "r" or "rw"'],
    [[{ kind: "file", path: "/proc/../etc/passwd", fix: "x", why }], "requires[0].path: must be an absolute, normalized path"],
    [[{ kind: "file", path: "/proc/filesystems", contains: "two words", fix: "x", why }], "requires[0].contains: must be one word"],
    [[{ kind: "socket", path: "docker.sock", fix: "x", why }], "requires[0].path: must be an absolute, normalized path"],
  ];
  for (const [value, message] of cases) {
    const err = t.throws(() => parseRequirements(value), { name: "ValidationError" }, message);
    t.is(err?.message, message);
  }
});
