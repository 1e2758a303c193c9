import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { VmctlError } from "../errors.js";
import { MAX_SYMLINK_HOPS, packContainerPath } from "./copy-out.js";
import { archiveEntries, sha256File, treeEntries, unpackInto } from "./copy-out.testing.js";

const UNICODE = "héllo wörld ✓ 日本.txt";

function tempDir(t: { teardown(fn: () => void): void }, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `vmctl-copy-out-${prefix}-`));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** rootfs/src/out: a Unicode name, an empty dir, a 5 MiB random file, a symlink, a nested file. */
function workTree(rootfs: string): string {
  const out = join(rootfs, "src", "out");
  mkdirSync(join(out, "empty"), { recursive: true });
  mkdirSync(join(out, "nested", "deeper"), { recursive: true });
  writeFileSync(join(out, UNICODE), "unicode body\n");
  writeFileSync(join(out, "big.bin"), randomBytes(5 * 1024 * 1024));
  writeFileSync(join(out, "nested", "deeper", "a.txt"), "a\n");
  symlinkSync(UNICODE, join(out, "link"));
  return out;
}

async function codeOf(stream: AsyncIterable<Uint8Array>): Promise<{ code: string; message: string }> {
  try {
    await archiveEntries(stream);
  } catch (err) {
    if (err instanceof VmctlError) return { code: err.code, message: err.message };
    throw err;
  }
  return { code: "OK", message: "" };
}

test("a directory comes out under its own name: every file's sha256, the empty dir and the link target match", async (t) => {
  const rootfs = tempDir(t, "root");
  const out = workTree(rootfs);
  const dest = tempDir(t, "dest");
  await unpackInto(packContainerPath({ rootfs, mounts: [], path: "/src/out" }), dest);
  t.deepEqual(readdirSync(dest), ["out"]);
  t.is(sha256File(join(dest, "out", "big.bin")), sha256File(join(out, "big.bin")));
  t.is(sha256File(join(dest, "out", UNICODE)), sha256File(join(out, UNICODE)));
  t.is(readFileSync(join(dest, "out", "nested", "deeper", "a.txt"), "utf8"), "a\n");
  t.deepEqual(readdirSync(join(dest, "out", "empty")), []);
  t.is(readlinkSync(join(dest, "out", "link")), UNICODE);
  t.deepEqual(await archiveEntries(packContainerPath({ rootfs, mounts: [], path: "/src/out/" })), treeEntries(out, "out"));
});

test("a file comes out as one entry named for it; a symlink as the link itself", async (t) => {
  const rootfs = tempDir(t, "root");
  const out = workTree(rootfs);
  const file = await archiveEntries(packContainerPath({ rootfs, mounts: [], path: "/src/./out/nested/../big.bin" }));
  t.deepEqual([...file], [["big.bin", { type: "File", sha256: sha256File(join(out, "big.bin")) }]]);
  const link = await archiveEntries(packContainerPath({ rootfs, mounts: [], path: "/src/out/link" }));
  t.deepEqual([...link], [["link", { type: "SymbolicLink", linkpath: UNICODE }]]);
});

test("hostile symlinks never lead to the host: /out -> /etc is archived as a link, paths through links resolve in the rootfs", async (t) => {
  const rootfs = tempDir(t, "root");
  symlinkSync("/etc", join(rootfs, "out"));
  symlinkSync("../../../../etc", join(rootfs, "up"));
  symlinkSync("/", join(rootfs, "a"));
  mkdirSync(join(rootfs, "box"));
  symlinkSync("/etc", join(rootfs, "box", "abs"));
  symlinkSync("../../../../../../etc/passwd", join(rootfs, "box", "rel"));

  t.deepEqual([...(await archiveEntries(packContainerPath({ rootfs, mounts: [], path: "/out" })))], [["out", { type: "SymbolicLink", linkpath: "/etc" }]]);
  t.deepEqual([...(await archiveEntries(packContainerPath({ rootfs, mounts: [], path: "/up" })))], [["up", { type: "SymbolicLink", linkpath: "../../../../etc" }]]);
  for (const path of ["/out/passwd", "/up/passwd", "/a/etc/passwd", "/a/a/a/../../etc/hostname", "/box/abs/passwd", "/../../etc/passwd"]) {
    const { code, message } = await codeOf(packContainerPath({ rootfs, mounts: [], path }));
    t.is(code, "NOT_FOUND", path);
    t.true(message.includes(path), message);
  }
  // Inside a packed directory nothing is followed either: the links come out as links.
  const box = await archiveEntries(packContainerPath({ rootfs, mounts: [], path: "/box" }));
  t.deepEqual(box, treeEntries(join(rootfs, "box"), "box"));

  // Once the rootfs has an /etc, the same paths read it: the container's, not the host's.
  mkdirSync(join(rootfs, "etc"));
  writeFileSync(join(rootfs, "etc", "passwd"), "container-passwd\n");
  for (const path of ["/out/passwd", "/up/passwd", "/a/etc/passwd", "/box/abs/passwd", "/a/box/rel/../abs/passwd"]) {
    const entries = await archiveEntries(packContainerPath({ rootfs, mounts: [], path }));
    t.deepEqual([...entries], [["passwd", { type: "File", sha256: sha256File(join(rootfs, "etc", "passwd")) }]], path);
  }
});

test("a path at or under a mount's destination comes from its source (longest destination wins, also through a symlink)", async (t) => {
  const rootfs = tempDir(t, "root");
  const data = tempDir(t, "data");
  const inner = tempDir(t, "inner");
  mkdirSync(join(rootfs, "data", "sub"), { recursive: true });
  writeFileSync(join(rootfs, "data", "x.txt"), "the rootfs's, hidden by the mount\n");
  writeFileSync(join(data, "x.txt"), "from the mount\n");
  writeFileSync(join(inner, "y.txt"), "from the inner mount\n");
  symlinkSync("/data", join(rootfs, "ln"));
  const mounts = [
    { source: data, destination: "/data" },
    { source: inner, destination: "/data/sub" },
  ];
  const hashOf = async (path: string) => [...(await archiveEntries(packContainerPath({ rootfs, mounts, path })))];
  t.deepEqual(await hashOf("/data/x.txt"), [["x.txt", { type: "File", sha256: sha256File(join(data, "x.txt")) }]]);
  t.deepEqual(await hashOf("/ln/x.txt"), [["x.txt", { type: "File", sha256: sha256File(join(data, "x.txt")) }]]);
  t.deepEqual(await hashOf("/data/sub/y.txt"), [["y.txt", { type: "File", sha256: sha256File(join(inner, "y.txt")) }]]);
  // The destination itself: the source's tree, held under the destination's name.
  t.deepEqual(await archiveEntries(packContainerPath({ rootfs, mounts, path: "/data/sub" })), treeEntries(inner, "sub"));
  mkdirSync(join(rootfs, "etc"));
  const file = tempDir(t, "file");
  writeFileSync(join(file, "host-name.conf"), "conf\n");
  const fileMount = [{ source: join(file, "host-name.conf"), destination: "/etc/app.conf" }];
  t.deepEqual([...(await archiveEntries(packContainerPath({ rootfs, mounts: fileMount, path: "/etc/app.conf" })))], [
    ["app.conf", { type: "File", sha256: sha256File(join(file, "host-name.conf")) }],
  ]);
});

test("missing paths are NOT_FOUND naming the path; a symlink loop is INVALID_ARGUMENT; bad paths are refused", async (t) => {
  const rootfs = tempDir(t, "root");
  writeFileSync(join(rootfs, "file"), "");
  symlinkSync("l2", join(rootfs, "l1"));
  symlinkSync("l1", join(rootfs, "l2"));
  symlinkSync("self", join(rootfs, "self"));
  for (const path of ["/nope", "/nope/deeper", "/file/under-a-file"]) {
    const { code, message } = await codeOf(packContainerPath({ rootfs, mounts: [], path }));
    t.is(code, "NOT_FOUND", path);
    t.true(message.includes(path), message);
  }
  for (const path of ["/l1/x", "/self/x"]) {
    const { code, message } = await codeOf(packContainerPath({ rootfs, mounts: [], path }));
    t.is(code, "INVALID_ARGUMENT", path);
    t.true(message.includes(String(MAX_SYMLINK_HOPS)), message);
  }
  for (const path of ["relative", "/", "//", "/a\0b"]) t.is((await codeOf(packContainerPath({ rootfs, mounts: [], path }))).code, "INVALID_ARGUMENT", JSON.stringify(path));
});

test("a pid whose root is not the rootfs (here: this process, rooted at the host's /) is not read through", async (t) => {
  const rootfs = tempDir(t, "root");
  mkdirSync(join(rootfs, "etc"));
  writeFileSync(join(rootfs, "etc", "hostname"), "inside\n");
  const entries = await archiveEntries(packContainerPath({ rootfs, mounts: [], path: "/etc/hostname", pid: process.pid }));
  t.deepEqual([...entries], [["hostname", { type: "File", sha256: sha256File(join(rootfs, "etc", "hostname")) }]]);
  // A pid whose root IS the rootfs is read through /proc (here the host's / for this process).
  const live = await archiveEntries(packContainerPath({ rootfs: "/", mounts: [], path: "/etc/hostname", pid: process.pid }));
  t.is(live.get("hostname")?.sha256, sha256File("/etc/hostname"));
});

// Serial: the process's read bytes and open descriptors are measured, which other tests would move.
test.serial("read at the caller's pace: a stalled reader holds a little of 64 MiB of files; one that stops leaves no descriptor open", async (t) => {
  const rootfs = tempDir(t, "root");
  mkdirSync(join(rootfs, "out"));
  for (let i = 0; i < 8; i++) writeFileSync(join(rootfs, "out", `f${i}`), randomBytes(8 * 1024 * 1024));
  const fds = () => readdirSync("/proc/self/fd").length;
  const readBytes = () => Number(/^rchar: (\d+)$/m.exec(readFileSync("/proc/self/io", "utf8"))![1]);
  const before = fds();
  const stream = packContainerPath({ rootfs, mounts: [], path: "/out" });
  const it = stream[Symbol.asyncIterator]();
  const start = readBytes();
  await it.next();
  await new Promise((r) => setTimeout(r, 300));
  const read = readBytes() - start;
  t.true(read < 16 * 1024 * 1024, `read ${read} bytes ahead of a reader that took one chunk`);
  await it.return(undefined);
  const deadline = Date.now() + 5_000;
  while (fds() > before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.is(fds(), before);
});
