// copyOut() against a real dockerd: a tree made inside the container comes out as a tar
// that node-tar unpacks to the same entries and bytes (sha256 inside vs here), while the
// container runs and after its exit; errors say which path or why; and `vmctl run`'s -v
// mounts (specFromRun) are real binds: the command reads the host's file.
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import test, { type ExecutionContext } from "ava";
import { VmctlError, type RunInput } from "@vmctl/core/contract";
import { execToEnd } from "@vmctl/core/target-kit";
import { parseTreeDigest, treeDigest, treeDigestScript, unpack, untilStdout, utf8 } from "@vmctl/plugin-conformance";
import type { DockerController } from "./controller.js";
import type { DockerSpec } from "./spec.js";
import { client, scratch } from "./testing/context.js";
import { collectLogs, sh } from "./testing/helpers.js";

const s = await scratch("vmctl-docker-copy-");
const factory = s.factory();
let seq = 0;

test.after.always("no container of this file is left on the daemon", async (t) => {
  const left = await s.leftovers();
  await factory.close();
  await s.cleanup();
  t.deepEqual(left, []);
});

/** Bytes of the random file in the tree. */
const BIG_FILE_BYTES = 5 * 1024 * 1024;
const UNICODE_NAME = "ünïcødé-名前-🙂.txt";

/**
 * Shell (busybox: the test image links only a few applets) that makes /out: a small file,
 * one with a Unicode name, nested dirs, an empty dir, a relative symlink, and 5 MiB of
 * random bytes.
 */
const MAKE_TREE = [
  "b=busybox",
  "$b mkdir -p /out/sub/deep /out/empty",
  "echo hello > /out/a.txt",
  `echo unicode > '/out/${UNICODE_NAME}'`,
  "printf 'no newline' > /out/sub/deep/leaf",
  "$b ln -s ../a.txt /out/sub/link",
  `$b head -c ${BIG_FILE_BYTES} /dev/urandom > /out/big.bin`,
].join("; ");

/** Shell printing the digest of /out as the container sees it (sha256sum run inside). */
const PRINT_DIGEST = treeDigestScript("/out", "busybox ");

/** A service of the test image, destroyed when the test ends. */
function service(t: ExecutionContext, spec: Partial<DockerSpec>): Promise<DockerController> {
  return serviceOf(t, { image: s.image, ...spec });
}

/** A service of `spec` as validate() takes it, destroyed when the test ends. */
async function serviceOf(t: ExecutionContext, spec: unknown): Promise<DockerController> {
  const id = `c${++seq}`;
  const c = await factory.create(id, factory.validate(spec), s.context(id));
  t.teardown(() => c.destroy());
  return c;
}

/** A fresh empty directory on this host. */
function hostDir(name: string): string {
  return mkdtempSync(join(s.dir, `${name}-`));
}

/** The error copyOut(path) rejects with at its first read. */
async function copyError(t: ExecutionContext, c: DockerController, path: string): Promise<VmctlError> {
  const err = await t.throwsAsync(async () => {
    for await (const _ of c.copyOut(path)) t.fail("no bytes expected");
  });
  t.true(err instanceof VmctlError, `a VmctlError, not ${String(err)}`);
  return err as VmctlError;
}

/** The size and sha256 of a whole copy (not the bytes: ava's deepEqual of MiBs is slow). */
async function digestOf(archive: AsyncIterable<Uint8Array>): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash("sha256");
  let bytes = 0;
  for await (const chunk of archive) {
    hash.update(chunk);
    bytes += chunk.byteLength;
  }
  return { bytes, sha256: hash.digest("hex") };
}

test("copyOut of a running container's directory: every entry, name and byte as the container has it (sha256 inside vs here)", async (t) => {
  const c = await service(t, { args: sh(`${MAKE_TREE}; echo ready; exec sleep 1000`) });
  await c.start();
  await untilStdout(c, "ready");
  t.is((await c.state()).phase, "running");
  const inside = parseTreeDigest(utf8((await execToEnd(await c.exec({ args: sh(PRINT_DIGEST) }))).stdout));

  const dest = hostDir("running");
  t.deepEqual(await unpack(c.copyOut("/out"), dest), ["out"], "held under its own name");
  t.deepEqual(treeDigest(dest), inside);
  // What the digest must hold, so an empty or partial tree on both sides cannot pass.
  t.is(inside["out/empty"], "dir");
  t.is(inside["out/sub/link"], "symlink -> ../a.txt");
  t.regex(inside[`out/${UNICODE_NAME}`] ?? "", /^file [0-9a-f]{64}$/);
  t.is(readFileSync(join(dest, "out/big.bin")).length, BIG_FILE_BYTES);
  t.is(readFileSync(join(dest, "out/sub/link"), "utf8"), "hello\n", "the symlink resolves inside the copy");
  t.is(Object.keys(inside).length, 9, "out, 3 dirs under it, 4 files, 1 symlink");

  // A file is held under its own name too; a path inside a dir works the same.
  const file = hostDir("file");
  t.deepEqual(await unpack(c.copyOut("/out/sub/deep/leaf"), file), ["leaf"]);
  t.is(readFileSync(join(file, "leaf"), "utf8"), "no newline");
});

test("copyOut after the container exited (not removed): the same tree, checked against sha256sum run before the exit", async (t) => {
  const c = await service(t, { args: sh(`${MAKE_TREE}; ${PRINT_DIGEST}; exit 3`) });
  await c.start();
  t.is((await c.wait()).code, 3);
  t.is((await c.state()).phase, "exited");
  const inside = parseTreeDigest((await collectLogs(c)).stdout);
  t.is(Object.keys(inside).length, 9, "out, 3 dirs under it, 4 files, 1 symlink");

  const dest = hostDir("exited");
  await unpack(c.copyOut("/out"), dest);
  t.deepEqual(treeDigest(dest), inside);
  // Read again: copying takes nothing away.
  const again = hostDir("exited-again");
  await unpack(c.copyOut("/out"), again);
  t.deepEqual(treeDigest(again), inside);
});

test("copyOut of a paused container, and a reader that stops early leaves the next copy whole", async (t) => {
  const c = await service(t, { args: sh(`${MAKE_TREE}; echo ready; exec sleep 1000`) });
  await c.start();
  await untilStdout(c, "ready");
  const whole = await digestOf(c.copyOut("/out/big.bin"));
  t.true(whole.bytes > BIG_FILE_BYTES, "the tar: a header and the file");

  for await (const chunk of c.copyOut("/out/big.bin")) {
    t.true(chunk.byteLength > 0);
    break; // closes the response: the rest is never read
  }
  await c.pause();
  t.is((await c.state()).phase, "paused");
  t.deepEqual(await digestOf(c.copyOut("/out/big.bin")), whole);
  await c.resume();
  t.deepEqual(await digestOf(c.copyOut("/out/big.bin")), whole);
});

test("copyOut errors: NOT_FOUND naming a missing path; INVALID_ARGUMENT for a relative one; FAILED_PRECONDITION before the container exists and after destroy", async (t) => {
  const c = await service(t, { args: sh("echo ready; exec sleep 1000") });
  const early = await copyError(t, c, "/etc");
  t.is(early.code, "FAILED_PRECONDITION");
  t.regex(early.message, /no container yet/);

  await c.start();
  await untilStdout(c, "ready");
  const missing = await copyError(t, c, "/no/such/dir");
  t.is(missing.code, "NOT_FOUND");
  t.regex(missing.message, /\/no\/such\/dir/);
  t.is(missing.details.serviceId, c.id);
  const relative = await copyError(t, c, "etc");
  t.is(relative.code, "INVALID_ARGUMENT");
  t.is(relative.details.field, "path");

  await c.stop({ timeoutMs: 1000 });
  t.is((await copyError(t, c, "/no/such/dir")).code, "NOT_FOUND", "after the exit too");
  await c.destroy();
  const destroyed = await copyError(t, c, "/bin");
  t.is(destroyed.code, "FAILED_PRECONDITION");
  t.regex(destroyed.message, /destroyed/);
});

test("copyOut when the container was removed outside vmctl: FAILED_PRECONDITION saying so", async (t) => {
  const c = await service(t, { args: sh("exit 0") });
  await c.start();
  await c.wait();
  await client(s.socket).getContainer(c.containerName).remove({ force: true });
  const err = await copyError(t, c, "/bin");
  t.is(err.code, "FAILED_PRECONDITION");
  t.regex(err.message, /removed outside vmctl/);
});

/** A RunInput: what `vmctl run` gives when nothing else is said. */
function run(input: Partial<RunInput>): RunInput {
  return { command: [], env: {}, mounts: [], copyOut: [], spec: {}, ...input };
}

test("vmctl run -v through specFromRun: the command reads the host's file through a real bind, writes results into a read-write one, cannot write a read-only one; copyOut brings a result back", async (t) => {
  const work = hostDir("work");
  const input = randomBytes(64 * 1024);
  writeFileSync(join(work, "input.bin"), input);
  const ro = hostDir("ro");
  writeFileSync(join(ro, "note.txt"), "read me\n");
  mkdirSync(join(work, "results"));

  const script = [
    "busybox sha256sum /work/input.bin",
    "cat /ro/note.txt",
    "echo made-inside > /work/results/out.txt",
    "(echo x > /ro/new.txt) 2>/dev/null && echo ro-written || echo ro-refused",
    "busybox mkdir -p /scratch && echo local > /scratch/only-here.txt",
  ].join("; ");
  const spec = factory.specFromRun(run({ image: s.image, command: sh(script), mounts: [{ source: work, destination: "/work" }, { source: ro, destination: "/ro", readOnly: true }], copyOut: ["/scratch"] }));
  const c = await serviceOf(t, spec);
  await c.start();
  t.is((await c.wait()).code, 0);
  const { stdout, stderr } = await collectLogs(c);
  t.is(stderr, "");
  t.is(stdout, `${createHash("sha256").update(input).digest("hex")}  /work/input.bin\nread me\nro-refused\n`);
  t.is(readFileSync(join(work, "results/out.txt"), "utf8"), "made-inside\n", "the bind is read-write: the result is on the host");
  t.deepEqual(readdirSync(ro), ["note.txt"]);

  // A path that is not on a bind comes back through copyOut after the exit.
  const dest = hostDir("scratch");
  await unpack(c.copyOut("/scratch"), dest);
  t.is(readFileSync(join(dest, "scratch/only-here.txt"), "utf8"), "local\n");
  // And one on a bind: Docker's archive sees the mount.
  const fromBind = hostDir("bind");
  await unpack(c.copyOut("/work/results"), fromBind);
  t.is(readFileSync(join(fromBind, "results/out.txt"), "utf8"), "made-inside\n");
});
