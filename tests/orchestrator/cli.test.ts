// The vmctl CLI end to end against real runc: it starts vmctld itself when none answers.
import { statSync } from "node:fs";
import test from "ava";
import { runcList, sandbox, serviceProcesses, stopAutoStarted, teardown, until, vmctl, vmctlLive } from "./helpers/sandbox.js";

test("run --rm prints the output and exits with the workload's code; the daemon is started on demand with a 0600 socket", async (t) => {
  t.timeout(60_000);
  const sb = sandbox();
  try {
    const result = await vmctl(sb, ["run", "--rm", sb.rootfs, "--", "sh", "-c", "echo hi; echo oops >&2; exit 3"]);
    t.is(result.code, 3, result.stderr);
    t.is(result.stdout, "hi\n");
    t.is(result.stderr, "oops\n");
    t.is(statSync(sb.socket).mode & 0o777, 0o600);
    t.is(statSync(sb.stateDir).isDirectory(), true);
    const ps = await vmctl(sb, ["ps", "-a", "--json"]);
    t.deepEqual(JSON.parse(ps.stdout), []);

    // a child killed by a signal: its shell's status (128 + 9) comes through as the code
    const killed = await vmctl(sb, ["run", "--rm", sb.rootfs, "--", "sh", "-c", "sh -c 'kill -9 $$'; exit $?"]);
    t.is(killed.code, 137);
    // env from -e reaches the workload
    const env = await vmctl(sb, ["run", "--rm", "-e", "GREETING=hello there", sb.rootfs, "--", "sh", "-c", 'echo "$GREETING"']);
    t.is(env.stdout, "hello there\n");
    t.is(env.code, 0);
    t.deepEqual(runcList(sb.runcRoot), []);
  } finally {
    await stopAutoStarted(sb).catch(() => {});
    await teardown(sb);
  }
});

test("run -d, logs -f while running, ps (table, --json, --filter), inspect, stop, rm", async (t) => {
  t.timeout(60_000);
  const sb = sandbox();
  try {
    const script = "echo first; while [ ! -e /tmp/go ]; do sleep 0.05; done; echo second";
    const started = await vmctl(sb, ["run", "-d", "--name", "web", "--label", "tier=front", "--spec", JSON.stringify({ readonlyRootfs: false }), sb.rootfs, "--", "sh", "-c", script]);
    t.is(started.code, 0, started.stderr);
    const id = started.stdout.trim();
    t.regex(id, /^[0-9a-f]{16}$/);

    const follow = vmctlLive(sb, ["logs", "-f", "web"]);
    await until("logs -f to print the first line", () => follow.output().includes("first\n"));

    const table = await vmctl(sb, ["ps"]);
    t.regex(table.stdout, /^ID +NAME +TARGET +PHASE +ADDRESS +EXIT +AGE$/m);
    t.regex(table.stdout, new RegExp(`^${id} +web +oci +running +- +- +\\d+s$`, "m"));
    const json = JSON.parse((await vmctl(sb, ["ps", "--json", "--filter", "label=tier=front", "--filter", "target=oci"])).stdout) as { id: string; phase: string; labels: Record<string, string> }[];
    t.deepEqual(json.map((s) => [s.id, s.phase, s.labels.tier]), [[id, "running", "front"]]);
    t.deepEqual(JSON.parse((await vmctl(sb, ["ps", "--json", "--filter", "phase=exited"])).stdout), []);
    const inspect = JSON.parse((await vmctl(sb, ["inspect", "web"])).stdout) as { id: string; spec: { args: string[]; readonlyRootfs: boolean } }[];
    t.is(inspect[0]?.id, id);
    t.deepEqual(inspect[0]?.spec.args, ["sh", "-c", script]);
    t.is(inspect[0]?.spec.readonlyRootfs, false);

    // let it finish through the container, and logs -f ends with the service
    const { spawnSync } = await import("node:child_process");
    const { requireRunc } = await import("../../plugins/oci/src/testing/context.js");
    t.is(spawnSync(requireRunc(), ["--root", sb.runcRoot, "exec", `vmctl-${id}`, "touch", "/tmp/go"]).status, 0);
    const logs = await follow.done;
    t.is(logs.code, 0);
    t.is(logs.stdout, "first\nsecond\n");

    // a second long-running one to stop
    const sleeper = (await vmctl(sb, ["run", "-d", "--name", "sleeper", sb.rootfs, "--", "sleep", "100"])).stdout.trim();
    const stop = await vmctl(sb, ["stop", "-t", "0.2", "sleeper"]);
    t.is(stop.code, 0, stop.stderr);
    t.is(stop.stdout, "sleeper\n");
    const all = JSON.parse((await vmctl(sb, ["ps", "-a", "--json"])).stdout) as { id: string; phase: string; exit?: { signal?: string; code: number | null } }[];
    t.deepEqual(all.map((s) => [s.id, s.phase]).sort(), [[id, "exited"], [sleeper, "exited"]].sort());
    t.is(all.find((s) => s.id === sleeper)?.exit?.signal, "SIGKILL");
    t.is((await vmctl(sb, ["ps"])).stdout.trim().split("\n").length, 1); // header only: both exited

    const rm = await vmctl(sb, ["rm", "web", "sleeper"]);
    t.is(rm.code, 0, rm.stderr);
    t.deepEqual(JSON.parse((await vmctl(sb, ["ps", "-a", "--json"])).stdout), []);
    t.deepEqual(runcList(sb.runcRoot), []);
    t.deepEqual(serviceProcesses(sb), []);
  } finally {
    await stopAutoStarted(sb).catch(() => {});
    await teardown(sb);
  }
});

test("errors are one line with a non-zero exit", async (t) => {
  t.timeout(60_000);
  const sb = sandbox();
  try {
    const missing = await vmctl(sb, ["logs", "ghost"]);
    t.is(missing.code, 1);
    t.is(missing.stderr, "vmctl: no such service: ghost\n");
    const rm = await vmctl(sb, ["rm", "ghost"]);
    t.is(rm.stderr, "vmctl: no such service: ghost\n");
    const target = await vmctl(sb, ["run", "--target", "nope", sb.rootfs, "--", "true"]);
    t.is(target.code, 125);
    t.regex(target.stderr, /^vmctl: target: unknown target "nope" \(known: .*oci.*\)\n$/);
    const memory = await vmctl(sb, ["run", "--spec", '{"resources":{"memoryBytes":-1}}', sb.rootfs, "--", "true"]);
    t.is(memory.code, 125);
    t.regex(memory.stderr, /^vmctl: spec\.resources\.memoryBytes: .*\n$/);
    const usage = await vmctl(sb, ["ps", "--bogus"]);
    t.is(usage.code, 2);
    t.regex(usage.stderr, /^vmctl: unknown option '--bogus'/);
    const badSpec = await vmctl(sb, ["run", "--spec", "{nope", sb.rootfs]);
    t.is(badSpec.code, 2);
    t.regex(badSpec.stderr, /^vmctl: --spec is not valid JSON/);
    const targets = await vmctl(sb, ["targets", "--json"]);
    const oci = (JSON.parse(targets.stdout) as { name: string; status: string; capabilities: { logsFollow: boolean } }[]).find((x) => x.name === "oci");
    t.is(oci?.status, "ready");
    t.true(oci?.capabilities.logsFollow);
    t.regex((await vmctl(sb, ["targets"])).stdout, /^oci +vmctl-plugin-oci +ready +exec,pause,volumes,logsFollow$/m);
  } finally {
    await stopAutoStarted(sb).catch(() => {});
    await teardown(sb);
  }
});
