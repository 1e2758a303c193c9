// 100 concurrent CreateService calls for the oci target over gRPC: all succeed, names
// are unique, and the state (list, service dirs, database) agrees.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { connect, type ServiceRecord } from "@vmctl/client";
import { Daemon, runcList, sandbox, teardown } from "./helpers/sandbox.js";

test("100 concurrent creates over gRPC all succeed with unique names and consistent state", async (t) => {
  t.timeout(120_000);
  const sb = sandbox();
  let daemon: Daemon | undefined;
  try {
    daemon = await Daemon.start(sb);
    // Several connections, as independent clients would be.
    const clients = Array.from({ length: 4 }, () => connect(sb.socket));
    const spec = { rootfs: sb.rootfs, args: ["true"] };
    const results = await Promise.allSettled(
      Array.from({ length: 100 }, (_, i) =>
        clients[i % clients.length]!.create({ target: "oci", spec, labels: { batch: "b1", index: String(i) }, ...(i % 2 ? { name: `named-${i}` } : {}) }),
      ),
    );
    const failures = results.filter((r) => r.status === "rejected").map((r) => String((r as PromiseRejectedResult).reason));
    t.deepEqual(failures, []);
    const created = results.map((r) => (r as PromiseFulfilledResult<ServiceRecord>).value);
    t.is(new Set(created.map((s) => s.name)).size, 100);
    t.is(new Set(created.map((s) => s.id)).size, 100);

    const listed = await daemon.client.list({ labels: ["batch=b1"] });
    t.is(listed.length, 100);
    t.deepEqual(listed.map((s) => s.id).sort(), created.map((s) => s.id).sort());
    t.true(listed.every((s) => s.phase === "created"));
    t.deepEqual(readdirSync(join(sb.stateDir, "services")).sort(), created.map((s) => s.id).sort());

    // The same name from 10 callers at once: exactly one wins.
    const race = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => clients[i % 4]!.create({ name: "contested", target: "oci", spec })));
    t.is(race.filter((r) => r.status === "fulfilled").length, 1);
    t.true(race.filter((r) => r.status === "rejected").every((r) => (r as PromiseRejectedResult).reason.code === "ALREADY_EXISTS"));
    for (const c of clients) c.close();

    // Consistent after a restart too (the database is the truth).
    t.is(await daemon.stop(), 0);
    daemon = await Daemon.start(sb);
    t.is((await daemon.client.list()).length, 101);
    t.deepEqual(runcList(sb.runcRoot), []);
  } finally {
    await teardown(sb, [daemon]);
  }
});
