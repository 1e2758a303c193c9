// The client against a real vmctld (in-process, process target fixture: no runc needed).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import test from "ava";
import { silentLogger } from "@vmctl/core";
import { startVmctld, type Vmctld } from "@vmctl/server";
import { connect, VmctlError, type CreateServiceInput, type ServiceEvent } from "./index.js";

const PROCESS_PLUGIN = fileURLToPath(new URL("../../../tests/fixtures/vmctl-plugin-process", import.meta.url));
let dir: string;
let daemon: Vmctld;

test.before(async () => {
  dir = mkdtempSync(join(tmpdir(), "vmctl-client-test-"));
  daemon = await startVmctld({ stateDir: join(dir, "state"), socketPath: join(dir, "d.sock"), builtins: false, plugins: [PROCESS_PLUGIN], log: silentLogger });
});

test.after.always(async () => {
  for (const s of daemon.engine.list()) await daemon.engine.delete(s.id, { force: true }).catch(() => {});
  await daemon.close();
  rmSync(dir, { recursive: true, force: true });
});

test.serial("plain types come back: dates, labels, spec, exit; logs and watch are async iterables", async (t) => {
  const client = connect(daemon.socketPath);
  try {
    const events: ServiceEvent[] = [];
    const abort = new AbortController();
    const watching = (async () => {
      for await (const e of client.watch([], { signal: abort.signal })) events.push(e);
    })();
    const s = await client.create({ name: "p1", target: "process", spec: { args: ["sh", "-c", "echo out; echo err >&2; exit 5"] }, labels: { k: "v" }, start: true });
    t.is(s.name, "p1");
    t.true(s.createdAt instanceof Date && !Number.isNaN(s.createdAt.getTime()));
    t.deepEqual(s.labels, { k: "v" });
    t.deepEqual(s.spec, { args: ["sh", "-c", "echo out; echo err >&2; exit 5"] });
    const exit = await client.wait("p1");
    t.is(exit.code, 5);
    t.true(exit.at instanceof Date);
    const streams: Record<string, string> = { stdout: "", stderr: "" };
    for await (const chunk of client.logs("p1", { follow: true })) streams[chunk.stream] += Buffer.from(chunk.data).toString();
    t.deepEqual(streams, { stdout: "out\n", stderr: "err\n" });
    const got = await client.get(s.id);
    t.is(got.phase, "exited");
    t.is(got.exit?.code, 5);
    t.deepEqual((await client.list({ labels: ["k=v"], phases: ["exited"] })).map((x) => x.id), [s.id]);
    await client.delete("p1");
    const deadline = Date.now() + 10_000;
    while (!events.some((e) => e.kind === "deleted") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    abort.abort();
    await watching;
    t.deepEqual([...new Set(events.map((e) => e.kind))], ["created", "updated", "deleted"]);
    const targets = await client.targets();
    t.deepEqual(targets.map((x) => [x.name, x.status]), [["process", "ready"]]);
  } finally {
    client.close();
  }
});

test.serial("errors come back as VmctlError with the code and details the engine gave", async (t) => {
  const client = connect(daemon.socketPath);
  try {
    const missing = await t.throwsAsync(client.get("nope"), { instanceOf: VmctlError });
    t.is(missing?.code, "NOT_FOUND");
    t.deepEqual(missing?.details, { serviceId: "nope" });
    const invalid = await t.throwsAsync(client.create({ target: "process", spec: { args: [] } }), { instanceOf: VmctlError });
    t.is(invalid?.code, "INVALID_ARGUMENT");
    t.is(invalid?.details.field, "spec.args");
    const noShorthand = await t.throwsAsync(client.create({ target: "process", run: { command: ["true"] } }), { instanceOf: VmctlError });
    t.regex(noShorthand?.message ?? "", /this target needs --spec/);
    // breaking out of a follow loop cancels the stream without an error
    await client.create({ name: "long", target: "process", spec: { args: ["sh", "-c", "echo tick; sleep 30"] }, start: true });
    for await (const chunk of client.logs("long", { follow: true })) {
      t.regex(Buffer.from(chunk.data).toString(), /tick/);
      break;
    }
    await client.delete("long", { force: true });
  } finally {
    client.close();
  }
});

test.serial("details survive in any Unicode (rich error model), and a create with a requestId is safe to retry", async (t) => {
  const client = connect(daemon.socketPath);
  try {
    const label = await t.throwsAsync(client.create({ target: "process", spec: { args: ["true"] }, labels: { ключ: "x" } }), { instanceOf: VmctlError });
    t.is(label?.code, "INVALID_ARGUMENT");
    t.is(label?.details.field, "labels.ключ");
    const target = await t.throwsAsync(client.create({ target: "ö\u{1F600}", spec: {} }), { instanceOf: VmctlError });
    t.is(target?.code, "NOT_FOUND");
    // the message quotes the target as sent, and whichever details the engine gave came through
    t.true((target?.message ?? "").includes("ö\u{1F600}"), target?.message);
    t.true(target?.details.target === "ö\u{1F600}" || target?.details.field === "target", JSON.stringify(target?.details));

    const input: CreateServiceInput = { target: "process", spec: { args: ["true"] }, requestId: "retry-1" };
    const first = await client.create(input);
    const again = await client.create(input);
    t.is(again.id, first.id);
    t.is((await client.list()).filter((s) => s.id === first.id).length, 1);
    const other = await t.throwsAsync(client.create({ ...input, spec: { args: ["false"] } }), { instanceOf: VmctlError });
    t.is(other?.code, "ALREADY_EXISTS");
    t.is(other?.details.field, "requestId");
    await client.delete(first.id);
  } finally {
    client.close();
  }
});

test.serial("list() follows every page", async (t) => {
  const client = connect(daemon.socketPath);
  try {
    // Pages of 500 by default: 505 services need two answers.
    const made = [];
    for (let i = 0; i < 505; i++) made.push((await daemon.engine.create({ name: `page-${i}`, target: "process", spec: { args: ["true"] } })).id);
    const listed = await client.list();
    t.deepEqual(listed.map((s) => s.id).sort(), [...made].sort());
    for (const id of made) await daemon.engine.delete(id);
  } finally {
    client.close();
  }
});

test("nobody on the socket: UNAVAILABLE naming the socket", async (t) => {
  const client = connect(join(dir, "nobody.sock"));
  const err = await t.throwsAsync(client.ping(), { instanceOf: VmctlError });
  t.is(err?.code, "UNAVAILABLE");
  t.regex(err?.message ?? "", /cannot reach vmctld at .*nobody\.sock/);
  client.close();
});
