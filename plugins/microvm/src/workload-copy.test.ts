// An image VM's workspace as AgentWorkload drives it once the agent answers, against the
// real vmctl-agent outside any VM (agent/testing.ts; its Shutdown then only exits the
// agent): mounts copied in before the workload, copyOut while it runs, the copyOut paths
// kept after its exit and before the exit is settled, then Shutdown. The VM around it
// (relay, vsock, VMM) needs Linux: that part is the nested host's (README, "Testing").
import { once } from "node:events";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import anyTest, { type TestFn } from "ava";
import { makeWorkspace, treeDigest, unpack } from "@vmctl/plugin-conformance";
import { VmctlError, type ExitInfo } from "@vmctl/core/contract";
import { startAgent, type RunningAgent } from "./agent/testing.js";
import { serviceFor, vmAgent } from "./testing/agent-workload.js";
import { removePerVmFiles } from "./vmm-stop.js";

/** Every entry with its mode (and a file's sha256, a link's target): what a copy in and out must keep. */
const tree = (root: string): Record<string, string> => treeDigest(root, { modes: true });

const test = anyTest as TestFn<{ agent: RunningAgent; dir: string }>;

test.beforeEach(async (t) => {
  // One agent each: the copyOut case's Shutdown ends it.
  t.context.agent = await startAgent();
  t.context.dir = mkdtempSync(join(tmpdir(), "vmctl-mvm-workload-copy-"));
});
test.afterEach.always(async (t) => {
  await t.context.agent?.stop();
  rmSync(t.context.dir, { recursive: true, force: true });
});

/** copyOut(path) unpacked into a new directory; what it held. */
async function copiedOut(stream: AsyncIterable<Uint8Array>, into: string): Promise<string[]> {
  mkdirSync(into);
  return unpack(stream, into);
}

async function failure(stream: AsyncIterable<Uint8Array>): Promise<VmctlError> {
  try {
    for await (const _ of stream);
  } catch (err) {
    if (err instanceof VmctlError) return err;
    throw err;
  }
  throw new Error("the copy did not fail");
}

test("with copyOut: mounts copied in before the workload; its paths kept before the exit is settled, then Shutdown; after it copyOut serves what was kept, NOT_FOUND for a missing path, FAILED_PRECONDITION for any other; destroy's cleanup removes them", async (t) => {
  const { agent, dir } = t.context;
  const source = join(dir, "host-src");
  makeWorkspace(source);
  const guest = join(agent.dir, "guest/src");
  const copyOut = [join(guest, "out"), join(guest, "nothing-here"), join(guest, "result.txt")];
  const script = 'set -e; cd "$W"; mkdir out; cp -a "日本語" big.bin link out/; echo made > result.txt; echo hello; echo oops >&2; exit 3';
  const svc = serviceFor(dir, "with-copy-out");
  await svc.workload.startWorkload(agent.connection, vmAgent(["sh", "-c", script], [`W=${guest}`], { mounts: [{ source, destination: guest, readOnly: true }], copyOut }));

  const exit = await svc.exited;
  t.like(exit, { code: 3, reason: "exited" });
  // Kept before the exit was settled: three outcomes, two tars (the missing path has none).
  t.deepEqual(svc.keptWhenSettled(), ["0.tar", "2.tar", "index.json"]);
  t.true(svc.ctx.resources.list().some((r) => r.kind === "dir" && r.key === svc.layout.capturedDir), "the captured dir is in the ledger");
  // Then Shutdown, which outside a VM ends the agent.
  if (agent.child.exitCode === null && agent.child.signalCode === null) await once(agent.child, "exit");
  t.is(agent.child.exitCode, 0, agent.log());
  t.is(readFileSync(svc.layout.stdoutFile, "utf8"), "hello\n");
  t.is(readFileSync(svc.layout.stderrFile, "utf8"), "oops\n");

  // After the exit, with the agent gone: from what was kept.
  const vm = vmAgent([], [], { mounts: [], copyOut });
  const out = join(dir, "back-out");
  t.deepEqual(await copiedOut(svc.workload.copyOut(join(guest, "out"), vm), out), ["out"]);
  const expected = tree(source);
  const wanted = Object.fromEntries(Object.entries(expected).filter(([path]) => /^(日本語|big\.bin$|link$)/.test(path)));
  t.deepEqual(tree(join(out, "out")), wanted, "the results, byte for byte, as the workload copied them from the mount");
  t.deepEqual(await copiedOut(svc.workload.copyOut(`${join(guest, "result.txt")}/`, vm), join(dir, "back-file")), ["result.txt"]);
  t.is(readFileSync(join(dir, "back-file/result.txt"), "utf8"), "made\n");

  // A path inside a kept one: its part of the kept tar, under its own name.
  t.deepEqual(await copiedOut(svc.workload.copyOut(join(guest, "out", "日本語"), vm), join(dir, "back-sub")), ["日本語"]);
  const sub = Object.fromEntries(Object.entries(wanted).filter(([path]) => path.startsWith("日本語")));
  t.deepEqual(tree(join(dir, "back-sub")), sub, "a directory inside a kept path, byte for byte");
  t.deepEqual(await copiedOut(svc.workload.copyOut(join(guest, "out", "big.bin"), vm), join(dir, "back-big")), ["big.bin"]);
  t.is(tree(join(dir, "back-big"))["big.bin"], wanted["big.bin"]);
  const notInside = await failure(svc.workload.copyOut(join(guest, "out", "no-such"), vm));
  t.is(notInside.code, "NOT_FOUND", notInside.message);

  const missing = await failure(svc.workload.copyOut(join(guest, "nothing-here"), vm));
  t.is(missing.code, "NOT_FOUND");
  t.true(missing.message.startsWith(`${join(guest, "nothing-here")} was not in the VM when its workload ended`), missing.message);
  const other = await failure(svc.workload.copyOut(join(guest, "result.txt.other"), vm));
  t.is(other.code, "FAILED_PRECONDITION");
  t.regex(other.message, /the VM has powered off; only the paths given at run \(--copy-out\) are kept/);
  const noAgent = await failure(svc.workload.copyOut(join(guest, "out"), undefined));
  t.is(noAgent.code, "FAILED_PRECONDITION");
  t.regex(noAgent.message, /no guest agent/);

  await svc.workload.disconnect();
  removePerVmFiles(svc.ctx.resources, svc.layout);
  t.false(existsSync(svc.layout.capturedDir));
  t.deepEqual(svc.ctx.resources.list(), [], "every ledger entry released");
});

test("while the workload runs copyOut streams from the agent (NOT_FOUND for a missing path); without copyOut paths nothing is kept and the exit is settled at once", async (t) => {
  const { agent, dir } = t.context;
  const source = join(dir, "host-file.txt");
  writeFileSync(source, "from the host\n");
  const guest = join(agent.dir, "guest-run");
  const svc = serviceFor(dir, "running");
  await svc.workload.startWorkload(agent.connection, vmAgent(["sh", "-c", 'echo "$(cat "$G/in.txt") and the guest" > "$G/both.txt"; echo ready; exec sleep 60'], [`G=${guest}`], { mounts: [{ source, destination: join(guest, "in.txt") }], copyOut: [] }));
  const vm = vmAgent([], [], { mounts: [], copyOut: [] });
  for (let i = 0; !readFileSafe(svc.layout.stdoutFile).includes("ready"); i++) {
    if (i > 200) t.fail("the workload never said ready");
    await new Promise((r) => setTimeout(r, 25));
  }
  t.deepEqual(await copiedOut(svc.workload.copyOut(join(guest, "both.txt"), vm), join(dir, "live")), ["both.txt"]);
  t.is(readFileSync(join(dir, "live/both.txt"), "utf8"), "from the host and the guest\n");
  const missing = await failure(svc.workload.copyOut(join(guest, "nope"), vm));
  t.is(missing.code, "NOT_FOUND");
  t.regex(missing.message, /nope/);

  t.true(await svc.workload.terminate(5000), "SIGTERM ended it within the grace");
  t.like(await svc.exited, { code: null, signal: "SIGTERM" });
  t.deepEqual(svc.keptWhenSettled(), []);
  t.false(existsSync(svc.layout.capturedDir));
  t.is(agent.child.exitCode, null, "no Shutdown without copyOut paths: the agent (as init, the VM) ends by itself");
  await svc.workload.disconnect();
});

test("a mount that cannot be copied fails startWorkload naming it, and the workload never starts", async (t) => {
  const { agent, dir } = t.context;
  const svc = serviceFor(dir, "bad-mount");
  const gone = join(dir, "deleted-after-create");
  const err = await t.throwsAsync(
    svc.workload.startWorkload(agent.connection, vmAgent(["touch", join(agent.dir, "ran")], [], { mounts: [{ source: gone, destination: join(agent.dir, "g") }], copyOut: [join(agent.dir, "g")] })),
    { instanceOf: VmctlError },
  );
  t.is(err?.code, "FAILED_PRECONDITION");
  t.is(err?.details.field, "spec.mounts[0]");
  t.regex(err?.message ?? "", /deleted-after-create/);
  t.is((await agent.connection.info()).workloadExecBoottimeNs, 0, "no workload was started");
  t.false(existsSync(join(agent.dir, "ran")));
  await svc.workload.disconnect();
});

function readFileSafe(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}
