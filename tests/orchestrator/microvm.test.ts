// The microvm target end to end through vmctld: its gRPC API (via @vmctl/client) and the
// vmctl CLI, against the real vmctl-vmm and /dev/kvm, with test guests
// (tests/guests/ABI.md) as the workloads.
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { requireGuestElf } from "../guests/harness.js";
import { Daemon, sandbox, serviceProcesses, teardown, until, vmctl } from "./helpers/sandbox.js";

const guest = (...words: string[]) => ({ kernel: requireGuestElf(), bootArgs: ["console=ttyS0", ...words].join(" "), memoryMib: 32 });

function socketsUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: "utf8" }).filter((p) => p.endsWith(".sock"));
}

test("gRPC: a microVM service runs, streams its console, stops, and is deleted without a trace", async (t) => {
  t.timeout(90_000);
  const sb = sandbox();
  let daemon: Daemon | undefined;
  try {
    daemon = await Daemon.start(sb);
    const client = daemon.client;
    const microvm = (await client.targets()).find((x) => x.name === "microvm");
    t.is(microvm?.status, "ready", JSON.stringify(microvm));
    t.true(microvm?.capabilities.logsFollow);

    // A guest that exits with its own code: the service's exit code.
    const exits = await client.create({ name: "exits", target: "microvm", spec: guest("vmctl.test=exit_code", "vmctl.exit=5"), start: true });
    const exit = await client.wait(exits.id);
    t.is(exit.code, 5);
    t.is(exit.reason, "exited");
    let console = "";
    for await (const chunk of client.logs("exits")) console += Buffer.from(chunk.data).toString("utf8");
    t.regex(console, /^exit=5$/m);

    // A guest that runs until stopped: follow its console live, then stop it.
    const ticker = await client.create({ name: "ticker", target: "microvm", spec: guest("vmctl.test=ticker"), start: true });
    t.is(ticker.phase, "running");
    t.true((ticker.pid ?? 0) > 0);
    t.true(serviceProcesses(sb).includes(ticker.pid as number), "the VMM process runs under the service's directory");
    const abort = new AbortController();
    let live = "";
    const following = (async () => {
      for await (const chunk of client.logs("ticker", { follow: true, signal: abort.signal })) live += Buffer.from(chunk.data).toString("utf8");
    })().catch(() => undefined);
    await until("ticks on the followed console", () => /tick=\d+/.test(live));
    abort.abort();
    await following;
    const stopped = await client.stop("ticker", { stopTimeoutMs: 500 });
    t.is(stopped.phase, "exited");
    t.is(stopped.exit?.reason, "stopped");

    for (const name of ["exits", "ticker"]) await client.delete(name);
    t.deepEqual(await client.list(), []);
    t.deepEqual(serviceProcesses(sb), [], "no VMM process left");
    t.deepEqual(socketsUnder(join(sb.stateDir, "services")), [], "no VMM socket left");
  } finally {
    await teardown(sb, [daemon]);
  }
});

test("CLI: vmctl run on the microvm target returns the guest's exit code; run -d, ps, stop, rm", async (t) => {
  t.timeout(90_000);
  const sb = sandbox();
  let daemon: Daemon | undefined;
  try {
    daemon = await Daemon.start(sb);
    const elf = requireGuestElf();
    const run = await vmctl(sb, ["run", "--rm", "--target", "microvm", elf, "--", "vmctl.test=exit_code", "vmctl.exit=7"]);
    t.is(run.code, 7, run.stderr);
    t.regex(run.stdout, /^exit=7$/m);

    const started = await vmctl(sb, ["run", "-d", "--name", "vm1", "--target", "microvm", elf, "--", "vmctl.test=ticker"]);
    t.is(started.code, 0, started.stderr);
    const ps = JSON.parse((await vmctl(sb, ["ps", "--json"])).stdout) as { name: string; target: string; phase: string }[];
    t.deepEqual(ps.map((s) => [s.name, s.target, s.phase]), [["vm1", "microvm", "running"]]);
    const logs = await vmctl(sb, ["logs", "vm1"]);
    t.is(logs.code, 0, logs.stderr);
    t.regex(logs.stdout, /vmctl-guest: ticker start/);

    t.is((await vmctl(sb, ["stop", "-t", "1", "vm1"])).code, 0);
    const after = JSON.parse((await vmctl(sb, ["ps", "-a", "--json"])).stdout) as { name: string; phase: string }[];
    t.deepEqual(after.map((s) => [s.name, s.phase]), [["vm1", "exited"]]);
    t.is((await vmctl(sb, ["rm", "vm1"])).code, 0);
    t.deepEqual(JSON.parse((await vmctl(sb, ["ps", "-a", "--json"])).stdout), []);
    t.deepEqual(serviceProcesses(sb), [], "no VMM process left");

    const missing = await vmctl(sb, ["run", "--rm", "--target", "microvm", "/nonexistent/vmlinux"]);
    t.not(missing.code, 0);
    t.is(missing.stderr.trim().split("\n").length, 1, missing.stderr);
    t.regex(missing.stderr, /kernel/);
  } finally {
    await teardown(sb, [daemon]);
  }
});
