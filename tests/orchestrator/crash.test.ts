// kill -9 of vmctld while creates are in flight: after a restart every acknowledged
// service is there with its true phase, nothing is orphaned (runc container or shim),
// and the database passes PRAGMA integrity_check.
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import test from "ava";
import Database from "better-sqlite3";
import { connect, type ServiceRecord } from "@vmctl/client";
import { requireRunc } from "../../plugins/oci/src/testing/context.js";
import { Daemon, processesMentioning, runcList, sandbox, teardown, until } from "./helpers/sandbox.js";

function runcStatus(root: string, id: string): string | undefined {
  const r = spawnSync(requireRunc(), ["--root", root, "state", `vmctl-${id}`], { encoding: "utf8" });
  return r.status === 0 ? (JSON.parse(r.stdout) as { status: string }).status : undefined;
}

test("kill -9 during creates: acknowledged services survive with true phases, no orphans, integrity ok", async (t) => {
  t.timeout(180_000);
  const sb = sandbox();
  let daemon: Daemon | undefined;
  try {
    daemon = await Daemon.start(sb);
    const spec = { rootfs: sb.rootfs, args: ["sleep", "1000"] };
    const first: ServiceRecord[] = [];
    for (let i = 0; i < 20; i++) first.push(await daemon.client.create({ name: `steady-${i}`, target: "oci", spec, start: true }));
    t.true(first.every((s) => s.phase === "running"));
    t.log(`20 started`);

    // More creates in flight (half started, half only created); kill -9 once a few are acknowledged.
    const inflight = connect(sb.socket);
    const acknowledged: ServiceRecord[] = [];
    const pending = Array.from({ length: 30 }, (_, i) =>
      inflight.create({ name: `inflight-${i}`, target: "oci", spec, start: i % 2 === 0 }).then(
        (s) => void acknowledged.push(s),
        () => undefined,
      ),
    );
    await until("a few in-flight creates to be acknowledged", () => acknowledged.length >= 3, 60_000);
    await daemon.kill9();
    await Promise.all(pending);
    inflight.close();
    const ackedIds = [...first, ...acknowledged].map((s) => s.id);
    t.log(`acknowledged in flight before the kill: ${acknowledged.length} of 30`);

    const t0 = Date.now();
    daemon = await Daemon.start(sb);
    t.log(`restart took ${Date.now() - t0} ms`);
    const after = await daemon.client.list();
    const byId = new Map(after.map((s) => [s.id, s]));
    for (const id of ackedIds) t.true(byId.has(id), `acknowledged service ${id} is missing after the restart`);

    // True phases: what runc says agrees with what vmctld says.
    for (const s of after) {
      const status = runcStatus(sb.runcRoot, s.id);
      if (s.phase === "running") t.is(status, "running", `${s.name} reported running`);
      else t.not(status, "running", `${s.name} reported ${s.phase} but runc runs it`);
    }
    for (const s of first) t.is(byId.get(s.id)?.phase, "running", `${s.name} kept running through the crash`);
    for (const s of acknowledged) t.is(byId.get(s.id)?.phase, s.phase === "running" ? "running" : "created", s.name);

    // No orphans: every runc container and every shim belongs to a listed service.
    const known = new Set(after.map((s) => `vmctl-${s.id}`));
    for (const container of runcList(sb.runcRoot)) t.true(known.has(container), `orphan runc container ${container}`);
    const servicesDir = join(sb.stateDir, "services");
    for (const pid of processesMentioning(servicesDir)) {
      const { readFileSync } = await import("node:fs");
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
      const owner = after.find((s) => cmdline.includes(join(servicesDir, s.id)));
      t.truthy(owner, `process ${pid} belongs to no service: ${cmdline.replace(/\0/g, " ")}`);
      t.is(owner?.phase, "running", `process ${pid} of ${owner?.name} outlives its service`);
    }

    t.is(await daemon.stop(), 0);
    daemon = undefined;
    const db = new Database(join(sb.stateDir, "state.db"), { readonly: true });
    try {
      t.is(db.pragma("integrity_check", { simple: true }), "ok");
      t.deepEqual(db.pragma("foreign_key_check"), []);
    } finally {
      db.close();
    }
  } finally {
    await teardown(sb, [daemon]);
  }
});
