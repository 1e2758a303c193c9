// `vmctl system prune` end to end, through a real vmctld and real runc: a container of
// the oci target carrying the daemon's owner label but no service it knows is removed
// (a dry run only names it), the live service and another owner's container are left
// alone; PruneSystem refuses a malformed request with INVALID_ARGUMENT naming the field.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import test from "ava";
import * as grpc from "@grpc/grpc-js";
import type { ServiceController } from "@vmctl/core/contract";
import { silentLogger } from "@vmctl/core";
import { testTargetContext } from "@vmctl/plugin-conformance";
import { initOci } from "../../plugins/oci/src/index.js";
import { requireRunc } from "../../plugins/oci/src/testing/context.js";
import { RawOrchestrator } from "./helpers/raw-client.js";
import { Daemon, sandbox, teardown, vmctl, type Sandbox } from "./helpers/sandbox.js";
import { lengthDelimited, varint } from "./helpers/wire.js";

let sb: Sandbox;
let daemon: Daemon;
const made: ServiceController[] = [];

test.before(async () => {
  sb = sandbox("vmctl-e2e-prune-");
  daemon = await Daemon.start(sb);
});

test.after.always(async () => {
  for (const c of made) await c.destroy().catch(() => undefined);
  if (sb) await teardown(sb, [daemon]);
});

function runcState(id: string): { status: string; annotations: Record<string, string> } | undefined {
  const r = spawnSync(requireRunc(), ["--root", sb.runcRoot, "state", id], { encoding: "utf8" });
  return r.status === 0 ? (JSON.parse(r.stdout) as { status: string; annotations: Record<string, string> }) : undefined;
}

/** A running container made straight through the oci target, on the daemon's runc root, as `owner`'s service `serviceId`. */
async function labelled(owner: string, serviceId: string): Promise<string> {
  const factory = initOci({ stateDir: join(sb.stateDir, "targets", "oci"), options: { runc: requireRunc() }, log: silentLogger });
  if (!factory) throw new Error("no oci target");
  const ctx = testTargetContext(join(sb.dir, "side"), serviceId, { owner });
  const c = await factory.create(serviceId, factory.validate({ rootfs: sb.rootfs, args: ["sleep", "600"] }), ctx);
  made.push(c);
  await c.prepare();
  await c.start();
  return c.containerId;
}

test.serial("system prune: --dry-run names the orphan, prune removes it (a line each, --json too), the rest stays", async (t) => {
  t.timeout(60_000);
  const run = await vmctl(sb, ["run", "-d", "--name", "live", sb.rootfs, "--", "sleep", "600"]);
  t.is(run.code, 0, run.stderr);
  const liveId = run.stdout.trim();
  // The daemon's owner id, as its target labels what it makes.
  const owner = runcState(`vmctl-${liveId}`)?.annotations["vmctl.io/owner"] ?? "";
  t.regex(owner, /^[0-9a-f-]{36}$/);
  const first = await labelled(owner, "00000000deadbeef");
  const second = await labelled(owner, "00000000000000b2");
  const foreign = await labelled("someone-else", "00000000feedface");

  const dry = await vmctl(sb, ["system", "prune", "--dry-run"]);
  t.is(dry.code, 0, dry.stderr);
  t.deepEqual(dry.stdout.trim().split("\n").sort(), [
    `would remove oci runc-container ${second} (service 00000000000000b2)`,
    `would remove oci runc-container ${first} (service 00000000deadbeef)`,
  ]);
  t.is(runcState(first)?.status, "running", "a dry run removed something");

  const json = await vmctl(sb, ["system", "prune", "--json"]);
  t.is(json.code, 0, json.stderr);
  const report = JSON.parse(json.stdout) as { dryRun: boolean; things: { id: string; removed: boolean; serviceId: string }[]; failures: unknown[] };
  t.false(report.dryRun);
  t.deepEqual(report.failures, []);
  t.deepEqual(report.things.map((x) => [x.id, x.serviceId, x.removed]).sort(), [
    [second, "00000000000000b2", true],
    [first, "00000000deadbeef", true],
  ]);
  t.is(runcState(first), undefined);
  t.is(runcState(second), undefined);
  t.is(runcState(`vmctl-${liveId}`)?.status, "running", "the live service's container was touched");
  t.is(runcState(foreign)?.status, "running", "another owner's container was touched");
  const ps = JSON.parse((await vmctl(sb, ["ps", "--json"])).stdout) as { id: string; phase: string }[];
  t.deepEqual(ps.map((s) => [s.id, s.phase]), [[liveId, "running"]]);

  // One more orphan, removed in text mode: one line for it.
  const third = await labelled(owner, "00000000000000b3");
  const text = await vmctl(sb, ["system", "prune"]);
  t.is(text.code, 0, text.stderr);
  t.is(text.stdout, `removed oci runc-container ${third} (service 00000000000000b3)\n`);
  const nothing = await vmctl(sb, ["system", "prune"]);
  t.is(nothing.code, 0);
  t.is(nothing.stdout, "");
});

test.serial("PruneSystem: a malformed request is INVALID_ARGUMENT naming dryRun; odd ones answer as PruneImages (the same one bool field) does", async (t) => {
  const raw = new RawOrchestrator(sb.socket);
  try {
    // A varint cut short: does not decode.
    const truncated = await raw.call("pruneSystem", Buffer.from([...varint(1 << 3), 0x80]), 10_000);
    t.is(truncated.code, grpc.status.INVALID_ARGUMENT, truncated.message);
    t.is(truncated.details.field, "dryRun");
    t.regex(truncated.message, /^dryRun: /);
    // Whatever protobuf makes of the wrong wire type, an out-of-range varint, garbage or
    // unknown fields, PruneSystem says what PruneImages says to the same bytes.
    const cases: Buffer[] = [
      Buffer.from(lengthDelimited(1, Buffer.from("yes"))),
      Buffer.from([...varint((1 << 3) | 1), 0, 0, 0, 0, 0, 0, 0, 1]),
      Buffer.from([...varint((1 << 3) | 5), 1, 0, 0, 0]),
      Buffer.from([...varint(1 << 3), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
      Buffer.from([...varint(1 << 3), 2]),
      Buffer.from([0xff, 0xff, 0xff]),
      Buffer.from(lengthDelimited(9, Buffer.from("unknown"))),
    ];
    for (const bytes of cases) {
      const images = await raw.call("pruneImages", bytes, 10_000);
      const system = await raw.call("pruneSystem", bytes, 10_000);
      t.is(system.code, images.code, `${bytes.toString("hex")}: PruneSystem ${grpc.status[system.code]} ${system.message}, PruneImages ${grpc.status[images.code]} ${images.message}`);
      if (system.code === grpc.status.INVALID_ARGUMENT) t.is(system.details.field, images.details.field === "all" ? "dryRun" : images.details.field);
    }
    const ok = await raw.call("pruneSystem", Buffer.from([...varint(1 << 3), 1]), 10_000);
    t.is(ok.code, grpc.status.OK, ok.message);
  } finally {
    raw.close();
  }
});
