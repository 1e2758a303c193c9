// copyOut() against real LXC: what a container wrote comes out as it sees it — while it
// runs (through its own root: its tmpfs, its mounts) and after it exited (the rootfs
// directory, the mounts' sources) — and never a host file through a planted symlink.
import { mkdirSync, mkdtempSync, readFileSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { execToEnd } from "@vmctl/core/target-kit";
import { BUSYBOX_APPLETS, busyboxRootfs, untilStdout } from "@vmctl/plugin-conformance";
import type { LxcController } from "./controller.js";
import type { LxcSpec } from "./spec.js";
import { archiveEntries, failureOf, sha256sums } from "./testing/archive.js";
import { scratch, testContext } from "./testing/context.js";
import { text } from "./testing/exec-reader.js";

const s = scratch("vmctl-lxc-copy-");
test.after.always(() => s.cleanup());
const factory = s.factory();
const APPLETS = [...BUSYBOX_APPLETS, "mkdir", "dd", "ln", "sha256sum", "readlink"];
const UNICODE = "héllo wörld ✓.txt";
let seq = 0;

/** A service over a rootfs of its own (so it may write it), destroyed when the test ends. */
async function service(t: import("ava").ExecutionContext, spec: Partial<LxcSpec> & { args: string[] }): Promise<LxcController> {
  const id = `copy${++seq}-${process.pid}`;
  const rootfs = busyboxRootfs(mkdtempSync(join(s.dir, "rootfs-")), APPLETS);
  const c = await factory.create(id, factory.validate({ rootfs, ...spec }), testContext(s.dir, id));
  t.teardown(() => c.destroy());
  return c;
}

// Writes /work/out: a Unicode name, an empty dir, 2 MiB of random bytes, a symlink; then waits.
const WRITE_TREE = [
  "mkdir -p /work/out/empty /work/out/sub",
  `echo hello > '/work/out/${UNICODE}'`,
  "dd if=/dev/urandom of=/work/out/sub/big.bin bs=1024 count=2048 2>/dev/null",
  `ln -s '${UNICODE}' /work/out/link`,
  "echo ready",
].join(" && ");

async function sumsInside(c: LxcController): Promise<Map<string, string>> {
  const r = await execToEnd(await c.exec({ args: ["sh", "-c", `sha256sum '/work/out/${UNICODE}' /work/out/sub/big.bin`] }));
  return sha256sums(text(r.stdout));
}

test("the factory claims copy", (t) => {
  t.true(factory.capabilities.copy);
});

test("a running container's files come out with sha256sum's checksums, and again after it exited", async (t) => {
  const c = await service(t, { args: ["sh", "-c", `${WRITE_TREE}; exec sleep 1000`], readonlyRootfs: false });
  await c.start();
  await untilStdout(c, "ready");
  const sums = await sumsInside(c);
  const link = text((await execToEnd(await c.exec({ args: ["readlink", "/work/out/link"] }))).stdout).trim();
  const expected = new Map([
    ["out/", { type: "Directory" }],
    ["out/empty/", { type: "Directory" }],
    ["out/sub/", { type: "Directory" }],
    [`out/${UNICODE}`, { type: "File", sha256: sums.get(`/work/out/${UNICODE}`) }],
    ["out/sub/big.bin", { type: "File", sha256: sums.get("/work/out/sub/big.bin") }],
    ["out/link", { type: "SymbolicLink", linkpath: link }],
  ]);
  t.is(sums.size, 2);
  t.is(link, UNICODE);
  const sorted = (m: Map<string, unknown>) => [...m].sort(([a], [b]) => a.localeCompare(b));
  t.deepEqual(sorted(await archiveEntries(c.copyOut("/work/out"))), sorted(expected));

  await c.stop({ timeoutMs: 2_000 });
  t.is((await c.state()).phase, "exited");
  t.deepEqual(sorted(await archiveEntries(c.copyOut("/work/out"))), sorted(expected));
  t.deepEqual([...(await archiveEntries(c.copyOut("/work/out/sub/big.bin")))], [["big.bin", { type: "File", sha256: sums.get("/work/out/sub/big.bin") }]]);
});

test("a -v bind mount's files come out while running and after exit; the tmpfs /tmp only while running", async (t) => {
  const results = mkdtempSync(join(s.dir, "results-"));
  const script = "echo made > /results/r.txt && echo temp > /tmp/t.txt && echo ready && exec sleep 1000";
  const rootfs = busyboxRootfs(mkdtempSync(join(s.dir, "rootfs-")), APPLETS);
  mkdirSync(join(rootfs, "results"));
  const spec = factory.specFromRun({ image: rootfs, command: ["sh", "-c", script], env: {}, mounts: [{ source: results, destination: "/results" }], copyOut: [], spec: {} });
  const id = `copy${++seq}-${process.pid}`;
  const c = await factory.create(id, factory.validate(spec), testContext(s.dir, id));
  t.teardown(() => c.destroy());
  await c.start();
  await untilStdout(c, "ready");
  const sums = sha256sums(text((await execToEnd(await c.exec({ args: ["sha256sum", "/results/r.txt", "/tmp/t.txt"] }))).stdout));
  t.deepEqual([...(await archiveEntries(c.copyOut("/results/r.txt")))], [["r.txt", { type: "File", sha256: sums.get("/results/r.txt") }]]);
  t.deepEqual([...(await archiveEntries(c.copyOut("/tmp/t.txt")))], [["t.txt", { type: "File", sha256: sums.get("/tmp/t.txt") }]]);
  t.deepEqual([...(await archiveEntries(c.copyOut("/results")))].map(([p]) => p).sort(), ["results/", "results/r.txt"]);

  await c.stop({ timeoutMs: 2_000 });
  t.is(readFileSync(join(results, "r.txt"), "utf8"), "made\n");
  t.deepEqual([...(await archiveEntries(c.copyOut("/results/r.txt")))], [["r.txt", { type: "File", sha256: sums.get("/results/r.txt") }]]);
  t.is((await failureOf(c.copyOut("/tmp/t.txt"))).code, "NOT_FOUND", "the tmpfs went with the container");
});

test("symlinks a container plants resolve in the container, never on the host; missing is NOT_FOUND; destroyed refuses", async (t) => {
  const script = "mkdir -p /etc && echo container > /etc/marker && ln -s / /up && ln -s ../../../../etc /rel && ln -s /etc /evil && echo ready && exec sleep 1000";
  const c = await service(t, { args: ["sh", "-c", script], readonlyRootfs: false });
  await c.start();
  await untilStdout(c, "ready");
  for (const phase of ["running", "exited"]) {
    for (const path of ["/up/etc/marker", "/rel/marker", "/evil/marker", "/up/../../etc/marker"]) {
      const entries = await archiveEntries(c.copyOut(path));
      t.deepEqual([...entries].map(([p, e]) => [p, e.type]), [["marker", "File"]], `${phase} ${path}`);
    }
    for (const path of ["/evil/passwd", "/up/etc/passwd", "/rel/hostname", "/no/such"]) {
      const failure = await failureOf(c.copyOut(path));
      t.is(failure.code, "NOT_FOUND", `${phase} ${path}`);
      t.true(failure.message.includes(path), failure.message);
    }
    t.deepEqual([...(await archiveEntries(c.copyOut("/evil")))], [["evil", { type: "SymbolicLink", linkpath: "/etc" }]]);
    if (phase === "running") await c.stop({ timeoutMs: 2_000 });
  }
  await c.destroy();
  t.is((await failureOf(c.copyOut("/etc/marker"))).code, "FAILED_PRECONDITION");
});

test("a template-built rootfs (in the container's directory) gives what the container wrote, running and after exit", async (t) => {
  const id = `copy${++seq}-${process.pid}`;
  const spec = factory.validate({ template: "busybox", args: ["sh", "-c", `${WRITE_TREE}; exec sleep 1000`] });
  const c = await factory.create(id, spec, testContext(s.dir, id));
  t.teardown(() => c.destroy());
  await c.start();
  await untilStdout(c, "ready");
  const sums = await sumsInside(c);
  t.is(sums.size, 2);
  const files = (m: Map<string, { sha256?: string }>) => [...m].filter(([, e]) => e.sha256 !== undefined).map(([p, e]) => [p, e.sha256]).sort();
  const expected = [[`out/${UNICODE}`, sums.get(`/work/out/${UNICODE}`)], ["out/sub/big.bin", sums.get("/work/out/sub/big.bin")]].sort();
  t.deepEqual(files(await archiveEntries(c.copyOut("/work/out"))), expected);
  await c.stop({ timeoutMs: 2_000 });
  t.deepEqual(files(await archiveEntries(c.copyOut("/work/out"))), expected);
});
