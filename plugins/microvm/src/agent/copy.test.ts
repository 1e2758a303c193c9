// CopyIn / CopyOut against the real vmctl-agent: tar streams made and read by GNU tar on
// this side, files compared by sha256. The agent runs on this host, so the "guest" paths
// are paths here.
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { pipeline } from "node:stream/promises";
import anyTest, { type TestFn } from "ava";
import { VmctlError } from "@vmctl/core/contract";
import { startAgent, type RunningAgent } from "./testing.js";

const test = anyTest as TestFn<{ agent: RunningAgent }>;

test.before(async (t) => {
  t.context.agent = await startAgent();
});
test.after.always(async (t) => {
  await t.context.agent?.stop();
});

/** sha256 and mode of every regular file under `root`, by relative path. */
function checksums(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      const stat = statSync(path);
      if (stat.isDirectory()) walk(path);
      else out[relative(root, path)] = `${createHash("sha256").update(readFileSync(path)).digest("hex")} ${(stat.mode & 0o7777).toString(8)}`;
    }
  };
  walk(root);
  return out;
}

/** GNU tar, its exit awaited: `tar args...` with the given stdin/stdout handling. */
function tar(args: string[]) {
  const child = spawn("tar", args, { stdio: ["pipe", "pipe", "inherit"] });
  const done = new Promise<void>((resolve, reject) => {
    child.on("error", reject);
    child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`tar ${args.join(" ")} exited ${code}`))));
  });
  return { child, done };
}

test("a directory copied in and out keeps every file's bytes and mode", async (t) => {
  const { connection, dir } = t.context.agent;
  const source = join(dir, "source");
  mkdirSync(join(source, "nested/deeper"), { recursive: true });
  writeFileSync(join(source, "big.bin"), randomBytes(3 * 1024 * 1024 + 5));
  writeFileSync(join(source, "empty"), "");
  writeFileSync(join(source, "nested/run.sh"), "#!/bin/sh\necho hi\n", { mode: 0o755 });
  writeFileSync(join(source, "nested/deeper/small.txt"), "small\n", { mode: 0o600 });

  const packing = tar(["-C", source, "-cf", "-", "."]);
  packing.child.stdin.end();
  const destination = join(dir, "in-guest/workspace");
  const [copied] = await Promise.all([connection.copyIn(destination, packing.child.stdout), packing.done]);
  t.true(copied.entries >= 6, `${copied.entries} entries`);
  t.true(copied.bytes >= 3 * 1024 * 1024, `${copied.bytes} bytes`);
  t.deepEqual(checksums(destination), checksums(source));

  const back = join(dir, "back");
  mkdirSync(back);
  const unpacking = tar(["-C", back, "-xf", "-"]);
  unpacking.child.stdout.resume();
  await Promise.all([pipeline(connection.copyOut(destination), unpacking.child.stdin), unpacking.done]);
  // The archive holds the directory under its own name.
  t.deepEqual(checksums(join(back, "workspace")), checksums(source));
});

test("copying out a path that is not there fails with NOT_FOUND", async (t) => {
  const stream = t.context.agent.connection.copyOut(join(t.context.agent.dir, "nothing-here"));
  const err = await t.throwsAsync(
    (async () => {
      for await (const _ of stream);
    })(),
    { instanceOf: VmctlError },
  );
  t.is(err.code, "NOT_FOUND");
});

test("an entry escaping the destination is refused with INVALID_ARGUMENT naming it", async (t) => {
  const { connection, dir } = t.context.agent;
  const source = join(dir, "evil-source");
  mkdirSync(source);
  writeFileSync(join(source, "f"), "x");
  const packing = tar(["-C", source, "-cf", "-", "--absolute-names", "--transform", "s,^f$,../escaped,", "f"]);
  packing.child.stdin.end();
  const [result] = await Promise.allSettled([connection.copyIn(join(dir, "evil-destination"), packing.child.stdout), packing.done]);
  t.is(result.status, "rejected");
  const err = (result as PromiseRejectedResult).reason as VmctlError;
  t.true(err instanceof VmctlError);
  t.is(err.code, "INVALID_ARGUMENT");
  t.regex(err.message, /escaped/);
});

test("a tar stream that fails on this side cancels the copy with that failure", async (t) => {
  async function* broken(): AsyncGenerator<Uint8Array> {
    yield Buffer.alloc(512);
    throw Object.assign(new Error("disk gone"), { code: "EIO" });
  }
  const err = await t.throwsAsync(t.context.agent.connection.copyIn(join(t.context.agent.dir, "never"), broken()), { instanceOf: VmctlError });
  t.regex(err.message, /reading the tar stream: disk gone/);
});
