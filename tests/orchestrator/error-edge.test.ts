// The error edge against a real vmctld child process: client text that is not ASCII
// (once copied into ASCII trailers, where grpc-js threw and the daemon died), oversized
// values (once echoed whole), and requests that do not decode (once INTERNAL naming
// nothing). Each must be answered with a documented status whose details survive the
// trip, and the daemon must go on answering.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import test from "ava";
import { VmctlError } from "@vmctl/client";
import { vmctl } from "@vmctl/proto";
import { alive, Daemon, PROCESS_PLUGIN_FIXTURE, sandbox, teardown, vmctl as cli, type Sandbox } from "./helpers/sandbox.js";
import { RawOrchestrator } from "./helpers/raw-client.js";
import { deepCreateRequest } from "./helpers/wire.js";

let sb: Sandbox;
let daemon: Daemon;
let raw: RawOrchestrator;

test.before(async () => {
  sb = sandbox("vmctl-error-edge-");
  daemon = await Daemon.start(sb, { plugins: [PROCESS_PLUGIN_FIXTURE] });
  raw = new RawOrchestrator(sb.socket);
});

test.after.always(async () => {
  raw?.close();
  if (sb) await teardown(sb, [daemon]);
});

async function stillServing(t: { true(value: boolean, message?: string): void }): Promise<void> {
  t.true(alive(daemon.pid), `vmctld died: ${daemon.log().trim().split("\n").slice(-3).join(" | ")}`);
  await daemon.client.ping(5000);
}

async function refusal(call: Promise<unknown>): Promise<VmctlError> {
  const err = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof VmctlError)) throw new Error(`expected a VmctlError, got ${String(err)}`);
  return err;
}

test.serial("vmctl inspect é and vmctl rm é: a clear refusal, and vmctld stays up", async (t) => {
  for (const args of [["inspect", "é"], ["rm", "é"], ["stop", "ключ"]]) {
    const r = await cli(sb, args);
    t.is(r.code, 1, `${args.join(" ")}: ${r.stderr}`);
    t.regex(r.stderr, /^vmctl: .*(é|ключ)/, args.join(" "));
    t.is(r.stderr.trim().split("\n").length, 1);
    await stillServing(t);
  }
  const err = await refusal(daemon.client.get("é"));
  t.true(err.code === "NOT_FOUND" || err.code === "INVALID_ARGUMENT", err.code);
  // whichever it is, the detail naming what was wrong crossed the wire intact
  t.true(err.details.serviceId === "é" || err.details.field !== undefined, JSON.stringify(err.details));
});

test.serial("non-ASCII and control characters in details (labels, target, spec keys) survive as details", async (t) => {
  const label = await refusal(daemon.client.create({ target: "process", spec: { args: ["true"] }, labels: { ключ: "x" } }));
  t.is(label.code, "INVALID_ARGUMENT");
  t.regex(label.details.field ?? "", /ключ/);
  await stillServing(t);

  for (const target of ["oci\0", "é", "a\nb", "\u{1F600}"]) {
    const err = await refusal(daemon.client.create({ target, spec: {} }));
    t.true(err.code === "NOT_FOUND" || err.code === "INVALID_ARGUMENT", `${JSON.stringify(target)}: ${err.code} ${err.message}`);
    t.true(err.details.target === target || err.details.field === "target", JSON.stringify(err.details));
    await stillServing(t);
  }

  const key = await refusal(daemon.client.create({ target: "process", spec: { "a\nb": 1, args: ["true"] } }));
  t.is(key.code, "INVALID_ARGUMENT");
  t.true(key.details.field?.startsWith("spec"), JSON.stringify(key.details));
  await stillServing(t);
  const cliRun = await cli(sb, ["run", "--target", "process", "--label", "ключ=x", sb.rootfs, "--", "true"]);
  t.is(cliRun.code, 125, cliRun.stderr); // vmctl run: 125 when vmctl itself refused, as docker run
  t.regex(cliRun.stderr, /ключ/);
  await stillServing(t);
});

test.serial("a 1 MB id is answered with a short message quoting a short excerpt, not RESOURCE_EXHAUSTED", async (t) => {
  for (const id of ["x".repeat(10 * 1024), "é".repeat(1024 * 1024)]) {
    const err = await refusal(daemon.client.get(id));
    t.true(err.code === "NOT_FOUND" || err.code === "INVALID_ARGUMENT", err.code);
    t.true([...err.message].length <= 300, `${err.message.length} characters`);
    for (const value of Object.values(err.details)) t.true([...(value as string)].length <= 128);
  }
  await stillServing(t);
});

test.serial("requests that do not decode are INVALID_ARGUMENT naming the message type and the field", async (t) => {
  const badUtf8 = await raw.call("getService", Buffer.from([0x0a, 0x02, 0xc3, 0x28]), 10_000);
  t.is(badUtf8.code, grpc.status.INVALID_ARGUMENT, badUtf8.message);
  t.is(badUtf8.details.field, "id");
  t.is(badUtf8.message, "id: is not valid UTF-8 (malformed vmctl.v1.ServiceRef)");

  const garbage = await raw.call("listServices", Buffer.from([0xff, 0xff, 0xff]), 10_000);
  t.is(garbage.code, grpc.status.INVALID_ARGUMENT, garbage.message);
  t.regex(garbage.message, /vmctl\.v1\.ListServicesRequest/);

  const whole = Buffer.from(vmctl.v1.CreateServiceRequest.encode({ name: "x", target: "process", labels: { a: "b" } }).finish());
  const truncated = await raw.call("createService", whole.subarray(0, whole.length - 2), 10_000);
  t.is(truncated.code, grpc.status.INVALID_ARGUMENT, truncated.message);
  // the labels entry's length runs past the end: the entry is named, its key not yet read
  t.is(truncated.details.field, "labels");
  t.regex(truncated.message, /^labels: truncated .*\(malformed vmctl\.v1\.CreateServiceRequest\)$/);

  const stream = await raw.call("logs", Buffer.from([0x12, 0x05]), 10_000);
  t.is(stream.code, grpc.status.INVALID_ARGUMENT, stream.message);
  t.regex(stream.message, /vmctl\.v1\.LogsRequest/);
  await stillServing(t);
});

test.serial("a spec nested 50 or 10,000 deep is INVALID_ARGUMENT naming the spec path, never INTERNAL", async (t) => {
  for (const depth of [50, 10_000]) {
    const outcome = await raw.call("createService", deepCreateRequest(depth), 20_000);
    t.is(outcome.code, grpc.status.INVALID_ARGUMENT, `${depth}: ${grpc.status[outcome.code]} ${outcome.message}`);
    t.regex(outcome.details.field ?? "", /^spec\.a/, `${depth}`);
    t.regex(outcome.message, /^spec\.a/);
  }
  t.deepEqual(await daemon.client.list(), []);
  let dirs: string[] = [];
  try {
    dirs = readdirSync(join(sb.stateDir, "services"));
  } catch {
    // none made
  }
  t.deepEqual(dirs, []);
  await stillServing(t);
});
