// The adversarial suite for vmctld: property-based hostile requests (adversarial/
// requests.ts) to every method of vmctl.v1.Orchestrator over a raw gRPC client, against
// a real vmctld child process. After every case: vmctld alive and answering ListTargets,
// the status in the method's documented set (never UNKNOWN or INTERNAL for client
// input), INVALID_ARGUMENT naming its field, an answer before the deadline, and nothing
// half-made (services listed == services acknowledged, no stray service directory; no
// image listed and no file in the image store, since nothing the suite sends can be pulled;
// networks listed == networks acknowledged, their bridges and no other in the daemon's
// network namespace — the daemon runs in one of its own, never the host's).
// The daemon is kept off the network: PullImage sends only references that cannot leave
// the host, and every registry request goes to a proxy where nothing listens (OFFLINE_ENV).
//
// VMCTL_SOAK_CASES sets the number of cases (default 5000; `npm run soak` runs a
// million); VMCTL_FUZZ_SEED replays a run (the seed is printed when a case fails).
//
// Cases run in batches (VMCTL_SOAK_BATCH; 1 in `npm test`, 64 in the soak): creates and
// deletes of a batch go one after another, so the model of what exists stays exact, while
// the other requests of the batch run alongside them on up to LANES concurrent calls. The
// per-answer rules hold for every case; what exists is compared after every batch — a
// half-made service stays on disk and in the list, so it is still found, and the report
// names the batch that made it.
import * as grpc from "@grpc/grpc-js";
import test from "ava";
import fc from "fast-check";
import { VmctlError } from "@vmctl/client";
import { alive, Daemon, PROCESS_PLUGIN_FIXTURE, sandbox, teardown, type Sandbox } from "./helpers/sandbox.js";
import { TestNetns } from "./helpers/netns.js";
import { METHODS, RawOrchestrator, type RawOutcome } from "./helpers/raw-client.js";
import { acceptedWrongly } from "./adversarial/accepted.js";
import { violation, WAITING } from "./adversarial/invariants.js";
import { hostileRequest, OFFLINE_ENV, type HostileRequest } from "./adversarial/requests.js";
import { MODEL_METHODS, ServiceModel } from "./adversarial/service-model.js";

const CASES = Number(process.env.VMCTL_SOAK_CASES ?? 5000);
const BATCH = Number(process.env.VMCTL_SOAK_BATCH ?? 1);
/** Calls of a batch in flight at once besides the creates and deletes. */
const LANES = 64;
const REPORT = process.env.VMCTL_SOAK_REPORT !== undefined;
const PROGRESS_EVERY = 50_000;
const SEED = process.env.VMCTL_FUZZ_SEED === undefined ? undefined : Number(process.env.VMCTL_FUZZ_SEED);
/** Deadline of a call that must answer by itself; of a call that may wait (a watch, logs -f, a wait). */
const ANSWER_MS = 10_000;
const WAIT_MS = 150;
/** Acknowledged services kept before the suite deletes them all (keeps each check cheap). */
const KEEP_SERVICES = 24;
/** Acknowledged networks kept before the suite deletes them all (the pool holds 256). */
const KEEP_NETWORKS = 8;

let sb: Sandbox;
let ns: TestNetns;
let daemon: Daemon;
let raw: RawOrchestrator;

test.before(async () => {
  sb = sandbox("vmctl-adversarial-");
  // Its own network namespace: a CreateNetwork that succeeds makes a bridge and rules there.
  ns = TestNetns.create("vmctl-adv");
  daemon = await Daemon.start(sb, {
    wrap: (argv) => ns.wrap(argv),
    plugins: [PROCESS_PLUGIN_FIXTURE],
    extraArgs: ["--no-builtins", "--log-level", "warn"],
    // No command name resolves: whatever a hostile spec names, nothing on the host runs.
    // No registry request leaves the host (see requests.ts, "Image references").
    env: { ...process.env, PATH: "/nonexistent-vmctl-adversarial", ...OFFLINE_ENV },
  });
  raw = new RawOrchestrator(sb.socket);
});

test.after.always(async () => {
  raw?.close();
  if (sb) await teardown(sb, [daemon]);
  ns?.remove();
});

function describe(request: HostileRequest, outcome: RawOutcome): string {
  const bytes = request.bytes.length > 256 ? `${request.bytes.subarray(0, 256).toString("hex")}… (${request.bytes.length} bytes)` : request.bytes.toString("hex");
  return `${request.method} (${request.how}) → ${grpc.status[outcome.code]} ${JSON.stringify(outcome.message)} details=${JSON.stringify(outcome.details)}\n  request: ${bytes}`;
}

/** Deletes every acknowledged service, dependents before what they depend on (deleting a dependency is refused). */
async function deleteAll(model: ServiceModel): Promise<void> {
  for (let pass = 0; model.size > 0; pass++) {
    if (pass > KEEP_SERVICES + 1) throw new Error(`cannot delete ${JSON.stringify(model.ids())}`);
    for (const id of model.ids()) {
      try {
        await daemon.client.delete(id, { force: true, timeoutMs: ANSWER_MS });
        model.forget(id);
      } catch (err) {
        if (!(err instanceof VmctlError && err.code === "FAILED_PRECONDITION")) throw err;
      }
    }
  }
}

test.serial("vmctld answers any request to any method with a documented status, stays up, leaves nothing half-made", async (t) => {
  if (!Number.isInteger(BATCH) || BATCH < 1) throw new Error(`VMCTL_SOAK_BATCH must be a whole number ≥ 1, not ${process.env.VMCTL_SOAK_BATCH}`);
  t.timeout(Math.max(120_000, CASES * 200));
  const model = new ServiceModel(sb.stateDir);
  const counts = { cases: 0, byMethod: {} as Record<string, number>, byStatus: {} as Record<string, number>, detail: {} as Record<string, number> };
  const started = Date.now();

  /** Sends one case and checks the rules every single answer keeps. */
  const send = async (request: HostileRequest): Promise<void> => {
    const outcome = await raw.call(request.method, request.bytes, WAITING.has(request.method) ? WAIT_MS : ANSWER_MS);
    counts.cases++;
    counts.byMethod[request.method] = (counts.byMethod[request.method] ?? 0) + 1;
    const status = grpc.status[outcome.code] ?? String(outcome.code);
    counts.byStatus[status] = (counts.byStatus[status] ?? 0) + 1;
    const key = `${request.method} ${status}`;
    counts.detail[key] = (counts.detail[key] ?? 0) + 1;
    model.record(request, outcome);

    const problem = violation(request.method, outcome) ?? acceptedWrongly(request, outcome, (except) => model.subnets(except));
    if (problem !== undefined) throw new Error(`${problem}\n  ${describe(request, outcome)}`);
    if (!alive(daemon.pid)) throw new Error(`vmctld died after ${describe(request, outcome)}\n${daemon.log().trim().split("\n").slice(-5).join("\n")}`);
  };

  /** After a batch: vmctld answers, and exactly the acknowledged services exist. */
  const checkState = async (batch: readonly HostileRequest[]): Promise<void> => {
    const after = () => (batch.length === 1 ? `after ${batch[0]?.method} (${batch[0]?.how})` : `after a batch of ${batch.length}: ${batch.map((r) => `${r.method} (${r.how})`).join(", ")}`);
    await daemon.client.ping(5000);
    const listed = (await daemon.client.list()).map((s) => s.id).sort();
    if (JSON.stringify(listed) !== JSON.stringify(model.ids())) {
      throw new Error(`services listed ${JSON.stringify(listed)} != acknowledged ${JSON.stringify(model.ids())} ${after()}`);
    }
    const dirs = model.serviceDirs();
    if (JSON.stringify(dirs) !== JSON.stringify(listed)) throw new Error(`service dirs ${JSON.stringify(dirs)} != services ${JSON.stringify(listed)} ${after()}`);
    const images = (await daemon.client.listImages()).map((i) => i.digest);
    if (images.length > 0) throw new Error(`images listed ${JSON.stringify(images)}, yet nothing can be pulled ${after()}`);
    const files = model.imageFiles();
    if (files.length > 0) throw new Error(`files left in the image store ${JSON.stringify(files.slice(0, 5))} ${after()}`);
    const networks = await daemon.client.listNetworks();
    if (JSON.stringify(networks.map((n) => n.name).sort()) !== JSON.stringify(model.networks())) {
      throw new Error(`networks listed ${JSON.stringify(networks.map((n) => n.name))} != acknowledged ${JSON.stringify(model.networks())} ${after()}`);
    }
    const bridges = ns.links().filter((l) => l.ifname.startsWith("vmbr-")).map((l) => l.ifname).sort();
    if (JSON.stringify(bridges) !== JSON.stringify(networks.map((n) => n.bridge).sort())) {
      throw new Error(`bridges ${JSON.stringify(bridges)} != the networks' ${JSON.stringify(networks.map((n) => n.bridge))} ${after()}`);
    }
    if (model.size > KEEP_SERVICES) await deleteAll(model);
    if (model.networks().length > KEEP_NETWORKS) {
      for (const name of model.networks()) {
        await daemon.client.deleteNetwork(name, { timeoutMs: ANSWER_MS });
        model.forgetNetwork(name);
      }
    }
  };

  const runBatch = async (batch: readonly HostileRequest[]): Promise<void> => {
    const ordered = batch.filter((r) => MODEL_METHODS.has(r.method));
    const others = batch.filter((r) => !MODEL_METHODS.has(r.method));
    const inOrder = async () => {
      for (const request of ordered) await send(request);
    };
    const lane = async () => {
      for (let request = others.shift(); request !== undefined; request = others.shift()) await send(request);
    };
    const before = counts.cases;
    await Promise.all([inOrder(), ...Array.from({ length: Math.min(LANES, others.length) }, lane)]);
    await checkState(batch);
    // A soak runs for a quarter of an hour: say how far it got every 50,000 cases.
    if (REPORT && Math.floor(before / PROGRESS_EVERY) !== Math.floor(counts.cases / PROGRESS_EVERY)) {
      const seconds = (Date.now() - started) / 1000;
      console.log(`adversarial: ${counts.cases} of ${CASES} cases in ${seconds.toFixed(0)} s (${Math.round(counts.cases / seconds)}/s), nothing found so far`);
    }
  };

  await fc.assert(fc.asyncProperty(fc.array(hostileRequest, { minLength: BATCH, maxLength: BATCH }), runBatch), {
    numRuns: Math.ceil(CASES / BATCH),
    ...(SEED === undefined ? {} : { seed: SEED }),
    // Shrinking replays against a daemon whose state has moved on: report the case as found.
    endOnFailure: true,
    includeErrorInReport: true,
  });

  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  const summary = `adversarial: ${counts.cases} cases in ${seconds} s (batches of ${BATCH}); by method ${JSON.stringify(counts.byMethod)}; by status ${JSON.stringify(counts.byStatus)}`;
  t.log(summary);
  if (REPORT) console.log(`${summary}\nby method and status ${JSON.stringify(counts.detail, null, 1)}`);
  // every method and a spread of answers were exercised
  t.is(Object.keys(counts.byMethod).length, METHODS.length);
  t.true((counts.byStatus.INVALID_ARGUMENT ?? 0) > 0 && (counts.byStatus.OK ?? 0) > 0 && (counts.byStatus.NOT_FOUND ?? 0) > 0, JSON.stringify(counts.byStatus));
  t.true(alive(daemon.pid));
});
