// copyOut() against real runc, what is runc's own: the path resolved as the container sees
// it — while it runs through its live root (its tmpfs /tmp, its -v binds), after it exited
// through the rootfs directory and the binds' sources — and never a host file through a
// symlink the container planted. A tree written and copied out running and after the exit
// (sha256sum inside vs the archive) is the kit's capabilities/copy check (conformance.test.ts).
import { mkdirSync, mkdtempSync, readFileSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { execToEnd } from "@vmctl/core/target-kit";
import { archiveEntries, BUSYBOX_APPLETS, busyboxRootfs, failureOf, sha256sums, untilStdout, utf8 as text } from "@vmctl/plugin-conformance";
import type { OciController } from "./controller.js";
import type { OciSpec } from "./spec.js";
import { scratch, testContext } from "./testing/context.js";

const s = scratch("vmctl-oci-copy-");
test.after.always(() => s.cleanup());
const factory = s.factory();
const APPLETS = [...BUSYBOX_APPLETS, "mkdir", "ln", "sha256sum"];
let seq = 0;

/** A service over a rootfs of its own (so it may write it), destroyed when the test ends. */
async function service(t: import("ava").ExecutionContext, spec: Partial<OciSpec> & { args: string[] }): Promise<OciController> {
  const id = `copy${++seq}-${process.pid}`;
  const rootfs = busyboxRootfs(mkdtempSync(join(s.dir, "rootfs-")), APPLETS);
  const c = await factory.create(id, factory.validate({ rootfs, ...spec }), testContext(s.dir, id));
  t.teardown(() => c.destroy());
  return c;
}

test("the factory claims copy", (t) => {
  t.true(factory.capabilities.copy);
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
