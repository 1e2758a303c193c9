// The full lifecycle of an oci service through vmctld's gRPC API (via @vmctl/client),
// against real runc.
import test from "ava";
import { VmctlError, type ServiceEvent } from "@vmctl/client";
import { Daemon, runcList, sandbox, serviceProcesses, teardown, until } from "./helpers/sandbox.js";

test("create, start, get, list with filters, watch, follow logs while running, wait, stop, delete", async (t) => {
  t.timeout(90_000);
  const sb = sandbox();
  let daemon: Daemon | undefined;
  try {
    daemon = await Daemon.start(sb);
    const client = daemon.client;
    const watched: ServiceEvent[] = [];
    const watchAbort = new AbortController();
    const watching = (async () => {
      for await (const event of client.watch([], { signal: watchAbort.signal })) watched.push(event);
    })();

    const spec = { rootfs: sb.rootfs, args: ["sh", "-c", "echo one; while [ ! -e /tmp/go ]; do sleep 0.05; done; echo two; exit 7"], readonlyRootfs: false };
    const created = await client.create({ name: "life", target: "oci", spec, labels: { tier: "web", team: "a" } });
    t.is(created.phase, "created");
    t.is(created.name, "life");
    t.deepEqual(created.labels, { tier: "web", team: "a" });
    t.deepEqual(created.spec, spec);
    t.true(created.createdAt instanceof Date);

    const other = await client.create({ name: "other", target: "oci", spec: { rootfs: sb.rootfs, args: ["true"] }, labels: { tier: "db" } });

    const started = await client.start("life");
    t.is(started.phase, "running");
    t.true((started.pid ?? 0) > 0);
    t.is((await client.get(created.id)).name, "life");

    // list filters: label selector, target, phase
    t.deepEqual((await client.list({ labels: ["tier=web"] })).map((s) => s.name), ["life"]);
    t.deepEqual((await client.list({ labels: ["tier"] })).map((s) => s.name).sort(), ["life", "other"]);
    t.deepEqual((await client.list({ target: "oci", phases: ["created"] })).map((s) => s.name), ["other"]);
    t.deepEqual((await client.list({ target: "nope" })).length, 0);

    // follow logs while running: "one" arrives before the workload is allowed to finish
    const logAbort = new AbortController();
    let text = "";
    const following = (async () => {
      for await (const chunk of client.logs("life", { follow: true, signal: logAbort.signal })) text += Buffer.from(chunk.data).toString();
    })();
    await until("first log line", () => text.includes("one\n"));
    t.false(text.includes("two"));
    t.is((await client.get("life")).phase, "running");

    // let it finish: the exec runs in the container
    const waiting = client.wait("life");
    const { spawnSync } = await import("node:child_process");
    const { requireRunc } = await import("../../plugins/oci/src/testing/context.js");
    const exec = spawnSync(requireRunc(), ["--root", sb.runcRoot, "exec", `vmctl-${created.id}`, "touch", "/tmp/go"], { encoding: "utf8" });
    t.is(exec.status, 0, exec.stderr);
    const exit = await waiting;
    t.is(exit.code, 7);
    t.is(exit.reason, "exited");
    await following;
    t.is(text, "one\ntwo\n");
    const exited = await client.get("life");
    t.is(exited.phase, "exited");
    t.is(exited.exit?.code, 7);

    // stop a created service (ends it without running), then delete both
    const stopped = await client.stop("other", { stopTimeoutMs: 1000 });
    t.is(stopped.phase, "created");
    await client.delete("life");
    await client.delete("other");
    await t.throwsAsync(client.get("life"), { instanceOf: VmctlError, message: /no service "life"/ });
    t.deepEqual(await client.list(), []);

    await until("deleted events", () => watched.filter((e) => e.kind === "deleted").length === 2);
    watchAbort.abort();
    await watching;
    const kinds = watched.filter((e) => e.service.name === "life").map((e) => e.kind);
    t.is(kinds[0], "created");
    t.true(kinds.includes("updated"));
    t.is(kinds[kinds.length - 1], "deleted");
    t.true(watched.some((e) => e.service.name === "life" && e.service.phase === "running"));
    t.true(watched.some((e) => e.service.name === "life" && e.service.phase === "exited" && e.service.exit?.code === 7));

    t.deepEqual(runcList(sb.runcRoot), []);
    t.deepEqual(serviceProcesses(sb), []);
  } finally {
    await teardown(sb, [daemon]);
  }
});

test("stop of a running service: SIGTERM, then forced after the timeout; delete needs force while running", async (t) => {
  t.timeout(60_000);
  const sb = sandbox();
  let daemon: Daemon | undefined;
  try {
    daemon = await Daemon.start(sb);
    const client = daemon.client;
    const svc = await client.create({ target: "oci", spec: { rootfs: sb.rootfs, args: ["sleep", "100"] }, start: true });
    t.is(svc.phase, "running");
    t.regex(svc.name, /^oci-/);
    const refused = await t.throwsAsync(client.delete(svc.id), { instanceOf: VmctlError });
    t.is(refused?.code, "FAILED_PRECONDITION");
    const stopped = await client.stop(svc.id, { stopTimeoutMs: 300 });
    t.is(stopped.phase, "exited");
    t.is(stopped.exit?.signal, "SIGKILL");
    t.is(stopped.exit?.reason, "stopped");
    // A workload that honours SIGTERM: delete with force stops it politely.
    const polite = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.05; done"];
    const again = await client.create({ target: "oci", spec: { rootfs: sb.rootfs, args: polite }, start: true });
    await client.delete(again.id, { force: true });
    t.deepEqual((await client.list()).map((s) => s.id), [svc.id]);
    await client.delete(svc.id);
    t.deepEqual(runcList(sb.runcRoot), []);
  } finally {
    await teardown(sb, [daemon]);
  }
});
