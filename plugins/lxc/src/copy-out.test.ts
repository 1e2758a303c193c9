// copyOut() against real LXC, what is LXC's own: a read-only rootfs (given) has a tmpfs
// /tmp that goes with the container, a template's rootfs (in the container's directory,
// writable) keeps /tmp; a bind mount comes out from its source after the exit; symlinks a
// template container planted resolve in it, never on the host. A tree written and copied
// out running and after the exit (sha256sum inside vs the archive) is the kit's
// capabilities/copy check (conformance.test.ts).
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync } from "node:fs";
import { join } from "node:path";
import test, { type ExecutionContext } from "ava";
import { execToEnd } from "@vmctl/core/target-kit";
import { archiveEntries, BUSYBOX_APPLETS, busyboxRootfs, failureOf, sha256sums, untilStdout, utf8 } from "@vmctl/plugin-conformance";
import type { LxcController } from "./controller.js";
import { scratch, testContext } from "./testing/context.js";

const s = scratch("vmctl-lxc-copy-");
test.after.always(() => s.cleanup());
const factory = s.factory();
let seq = 0;

/** A running service of `spec` (its workload prints "ready" once set up), destroyed when the test ends. */
async function runningService(t: ExecutionContext, spec: Record<string, unknown>): Promise<LxcController> {
  const id = `copy${++seq}-${process.pid}`;
  const c = await factory.create(id, factory.validate(spec), testContext(s.dir, id));
  t.teardown(() => c.destroy());
  await c.start();
  await untilStdout(c, "ready");
  return c;
}

/** sha256 of each path as the container sees it. */
async function sumsIn(c: LxcController, ...paths: string[]): Promise<Map<string, string>> {
  return sha256sums(utf8((await execToEnd(await c.exec({ args: ["sha256sum", ...paths] }))).stdout));
}

/** The one entry copyOut(path) holds, as [name, type, sha256]; or the failure's code. */
async function single(c: LxcController, path: string): Promise<unknown[] | string> {
  const failure = await failureOf(c.copyOut(path));
  if (failure.code !== "OK") return failure.code;
  return [...(await archiveEntries(c.copyOut(path)))].map(([name, e]) => [name, e.type, e.sha256 ?? e.linkpath]);
}

test("the factory claims copy", (t) => {
  t.true(factory.capabilities.copy);
});

const ROOTFS_KINDS = [
  { kind: "a given read-only rootfs", tmpAfterExit: "NOT_FOUND", spec: () => ({ rootfs: busyboxRootfs(mkdtempSync(join(s.dir, "rootfs-")), [...BUSYBOX_APPLETS, "sha256sum"]) }) },
  { kind: "a template's writable rootfs", tmpAfterExit: "kept", spec: () => ({ template: "busybox" }) },
] as const;

for (const { kind, tmpAfterExit, spec } of ROOTFS_KINDS) {
  test(`${kind}: a bind mount's file comes out running and after the exit; /tmp after the exit: ${tmpAfterExit}`, async (t) => {
    const results = mkdtempSync(join(s.dir, "results-"));
    const base = spec();
    if ("rootfs" in base) mkdirSync(join(base.rootfs, "results"));
    const script = "echo made > /results/r.txt && echo temp > /tmp/t.txt && echo ready && exec sleep 1000";
    const c = await runningService(t, { ...base, args: ["sh", "-c", script], mounts: [{ source: results, destination: "/results" }] });
    const sums = await sumsIn(c, "/results/r.txt", "/tmp/t.txt");
    const bound = ["r.txt", "File", sums.get("/results/r.txt")];
    const temp = ["t.txt", "File", sums.get("/tmp/t.txt")];
    t.deepEqual(await single(c, "/results/r.txt"), [bound]);
    t.deepEqual(await single(c, "/tmp/t.txt"), [temp]);
    await c.stop({ timeoutMs: 2_000 });
    t.is(readFileSync(join(results, "r.txt"), "utf8"), "made\n");
    t.deepEqual(await single(c, "/results/r.txt"), [bound], "from the bind's source");
    t.deepEqual(await single(c, "/tmp/t.txt"), tmpAfterExit === "kept" ? [temp] : "NOT_FOUND");
  });
}

test("a template container's planted symlinks resolve in it: its own /etc/passwd, never the host's; destroyed refuses", async (t) => {
  const script = "ln -s / /up && ln -s ../../../../etc /rel && ln -s /etc /evil && echo ready && exec sleep 1000";
  const c = await runningService(t, { template: "busybox", args: ["sh", "-c", script] });
  const inside = (await sumsIn(c, "/etc/passwd")).get("/etc/passwd");
  t.not(inside, createHash("sha256").update(readFileSync("/etc/passwd")).digest("hex"), "the template's passwd is not the host's");
  const paths = ["/up/etc/passwd", "/rel/passwd", "/evil/passwd", "/up/../../etc/passwd"];
  for (const phase of ["running", "exited"]) {
    for (const path of paths) t.deepEqual(await single(c, path), [["passwd", "File", inside]], `${phase} ${path}`);
    t.deepEqual(await single(c, "/evil"), [["evil", "SymbolicLink", "/etc"]], `${phase}: the link itself`);
    const missing = await failureOf(c.copyOut("/evil/no-such-file"));
    t.deepEqual([missing.code, missing.message.includes("/evil/no-such-file")], ["NOT_FOUND", true], `${phase}: ${missing.message}`);
    if (phase === "running") await c.stop({ timeoutMs: 2_000 });
  }
  await c.destroy();
  t.is((await failureOf(c.copyOut("/etc/passwd"))).code, "FAILED_PRECONDITION");
});
