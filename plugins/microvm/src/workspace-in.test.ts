// The spec's mounts copied in through the real vmctl-agent, outside any VM
// (agent/testing.ts): packed here by node-tar, unpacked by the agent's CopyIn, read back
// with its CopyOut and unpacked by node-tar again. The agent runs on this host, so the
// "guest" paths are paths here.
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import anyTest, { type TestFn } from "ava";
import { makeWorkspace, MIB, treeDigest, unpack } from "@vmctl/plugin-conformance";
import { VmctlError } from "@vmctl/core/contract";
import { startAgent, type RunningAgent } from "./agent/testing.js";
import { MemoryLogger } from "./testing/context.js";
import { copyMountsIn } from "./workspace-in.js";

/** Every entry with its mode (and a file's sha256, a link's target): what a copy in and out must keep. */
const tree = (root: string): Record<string, string> => treeDigest(root, { modes: true });

const test = anyTest as TestFn<{ agent: RunningAgent }>;

test.before(async (t) => {
  t.context.agent = await startAgent();
});
test.after.always(async (t) => {
  await t.context.agent?.stop();
});

test("a directory mount: its contents land in the destination (made), byte for byte (sha256), modes, symlinks and hard links kept, and come back the same through CopyOut", async (t) => {
  const { connection, dir } = t.context.agent;
  const source = join(dir, "workspace");
  makeWorkspace(source);
  const guest = join(dir, "guest/deep/src");
  const log = new MemoryLogger();
  await copyMountsIn(connection, [{ source, destination: guest }], "svc", log);
  const expected = tree(source);
  t.true(Object.keys(expected).length >= 10, JSON.stringify(expected));
  t.deepEqual(tree(guest), expected);
  t.is(statSync(join(guest, "hard link.txt")).ino, statSync(join(guest, "日本語/ディレクトリ/ファイル 🎉.txt")).ino, "a hard link stays one");
  const copied = log.lines.find((l) => l.message === "copied a mount into the VM");
  t.true(Number(copied?.fields?.bytes) >= 5 * MIB, JSON.stringify(copied));

  // The way back: the agent's tar holds the directory under its own name.
  const back = mkdtempSync(join(dir, "back-"));
  t.deepEqual(await unpack(connection.copyOut(guest), back), ["src"]);
  t.deepEqual(tree(join(back, "src")), expected);
});

test("a file mount lands at its destination under the destination's name; a symlinked source is followed", async (t) => {
  const { connection, dir } = t.context.agent;
  const source = join(dir, "settings.json");
  writeFileSync(source, '{"a":1}\n', { mode: 0o640 });
  chmodSync(source, 0o640);
  const viaLink = join(dir, "settings-link");
  symlinkSync(source, viaLink);
  const destination = join(dir, "guest-etc/app/config.json");
  await copyMountsIn(connection, [{ source: viaLink, destination, readOnly: true }], "svc", new MemoryLogger());
  t.deepEqual(readdirSync(join(dir, "guest-etc/app")), ["config.json"]);
  t.is(readFileSync(destination, "utf8"), '{"a":1}\n');
  t.false(lstatSync(destination).isSymbolicLink());
  t.is(lstatSync(destination).mode & 0o777, 0o640);
});

test("mounts are copied in order; one that fails names spec.mounts[i] and its source, and the ones after it are not copied", async (t) => {
  const { connection, dir } = t.context.agent;
  const first = join(dir, "first");
  mkdirSync(first);
  writeFileSync(join(first, "a"), "a");
  const gone = join(dir, "gone-since-create");
  const third = join(dir, "third");
  mkdirSync(third);
  const guest = join(dir, "guest-order");
  const mounts = [
    { source: first, destination: join(guest, "one") },
    { source: gone, destination: join(guest, "two") },
    { source: third, destination: join(guest, "three") },
  ];
  const err = await t.throwsAsync(copyMountsIn(connection, mounts, "svc", new MemoryLogger()), { instanceOf: VmctlError });
  t.is(err?.code, "FAILED_PRECONDITION");
  t.is(err?.details.field, "spec.mounts[1]");
  t.is(err?.details.serviceId, "svc");
  t.true(err?.message.startsWith(`spec.mounts[1] (${gone} → ${join(guest, "two")}): could not copy it into the VM:`), err?.message);
  t.deepEqual(readdirSync(guest), ["one"]);
});

test("a destination the guest cannot make (under a file) fails with the agent's reason, naming the mount", async (t) => {
  const { connection, dir } = t.context.agent;
  const source = join(dir, "src-under-file");
  mkdirSync(source);
  writeFileSync(join(source, "x"), "x");
  const file = join(dir, "a-file");
  writeFileSync(file, "");
  const err = await t.throwsAsync(copyMountsIn(connection, [{ source, destination: join(file, "sub") }], "svc", new MemoryLogger()), { instanceOf: VmctlError });
  t.is(err?.details.field, "spec.mounts[0]");
  t.regex(err?.message ?? "", /^spec\.mounts\[0\] .*: could not copy it into the VM: .*a-file/);
  rmSync(file);
});
