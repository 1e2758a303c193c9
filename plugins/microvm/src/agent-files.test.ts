// The agent's files as scripts/build leaves them: the initramfs read back with a newc
// reader of our own (so device numbers, modes and mtimes are checked, not only names).
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import test from "ava";
import { VmctlError } from "@vmctl/core/contract";
import { AGENT_BINARY, checkoutAgentBuilds, findAgentBinary, requireAgentBinary, requireAgentInitramfs } from "./agent-files.js";

interface CpioEntry {
  readonly name: string;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly mtime: number;
  readonly rdev: readonly [number, number];
  readonly data: Buffer;
}

/** The entries of a newc ("070701") cpio archive, up to its trailer. */
function readNewc(archive: Buffer): CpioEntry[] {
  const entries: CpioEntry[] = [];
  const align = (n: number): number => (n + 3) & ~3;
  for (let offset = 0; ; ) {
    const magic = archive.toString("latin1", offset, offset + 6);
    if (magic !== "070701") throw new Error(`not a newc header at ${offset}: ${JSON.stringify(magic)}`);
    const field = (i: number): number => parseInt(archive.toString("latin1", offset + 6 + i * 8, offset + 14 + i * 8), 16);
    const [mode, uid, gid, mtime, size, rdevMajor, rdevMinor, nameSize] = [1, 2, 3, 5, 6, 9, 10, 11].map(field) as number[];
    const nameStart = offset + 110;
    const name = archive.toString("utf8", nameStart, nameStart + nameSize! - 1);
    const dataStart = align(nameStart + nameSize!);
    if (name === "TRAILER!!!") return entries;
    entries.push({ name, mode: mode!, uid: uid!, gid: gid!, mtime: mtime!, rdev: [rdevMajor!, rdevMinor!], data: archive.subarray(dataStart, dataStart + size!) });
    offset = align(dataStart + size!);
  }
}

const S_IFMT = 0o170000;
const kind = (mode: number): string => ({ 0o040000: "dir", 0o020000: "char", 0o100000: "file" })[mode & S_IFMT] ?? `mode ${mode.toString(8)}`;

test("the initramfs holds exactly /init (the agent beside it, same bytes), /dev/console 5:1 and the mount points", (t) => {
  const initramfs = requireAgentInitramfs();
  const entries = readNewc(readFileSync(initramfs));
  t.deepEqual(
    entries.map((e) => `${e.name} ${kind(e.mode)} ${(e.mode & 0o7777).toString(8)}`),
    ["dev dir 755", "dev/console char 600", "init file 755", "mnt dir 755", "proc dir 755", "run dir 755", "sys dir 755", "tmp dir 1777"],
  );
  t.deepEqual(entries.find((e) => e.name === "dev/console")?.rdev, [5, 1]);
  // Made deterministically: nothing of the build machine or the build's time in it.
  t.true(entries.every((e) => e.uid === 0 && e.gid === 0 && e.mtime === 0));
  const agent = readFileSync(join(dirname(initramfs), AGENT_BINARY));
  const init = entries.find((e) => e.name === "init")!.data;
  t.true(init.equals(agent), `${initramfs}'s /init is not ${join(dirname(initramfs), AGENT_BINARY)} (stale: run \`npm run build\`)`);
});

test("the agent binary: the checkout's build, or what VMCTL_AGENT_BIN names", (t) => {
  const found = requireAgentBinary();
  t.true(checkoutAgentBuilds().includes(found), found);
  t.is(findAgentBinary({ VMCTL_AGENT_BIN: found }), found);
  t.is(findAgentBinary({ VMCTL_AGENT_BIN: "/nonexistent/vmctl-agent" }), undefined);
});

test("a missing file is NOT_FOUND saying how to build it", (t) => {
  const binary = t.throws(() => requireAgentBinary({ VMCTL_AGENT_BIN: "/nonexistent/vmctl-agent" }), { instanceOf: VmctlError });
  t.is(binary.code, "NOT_FOUND");
  t.regex(binary.message, /VMCTL_AGENT_BIN=\/nonexistent\/vmctl-agent .*cargo build --release --locked -p vmctl-guest-agent/);
  const initramfs = t.throws(() => requireAgentInitramfs({ VMCTL_AGENT_INITRAMFS: "/nonexistent/i" }), { instanceOf: VmctlError });
  t.is(initramfs.code, "NOT_FOUND");
  t.regex(initramfs.message, /npm run build/);
});
