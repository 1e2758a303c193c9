// The native front (crates/cli: the `vmctl` on users' PATH) against the Node CLI: for the
// verbs it serves itself (ps, run without a terminal) the same bytes on stdout and stderr
// and the same exit code, over generated command lines; everything else handed to the Node
// CLI untouched; no daemon running, Ctrl-C, and vmctld lost in the middle of a run.
import test from "ava";
import fc from "fast-check";
import {
  Daemon,
  processesMentioning,
  runcList,
  sandbox,
  stopAutoStarted,
  teardown,
  until,
  vmctl,
  vmctlLive,
  type CliResult,
  type Sandbox,
} from "./helpers/sandbox.js";

const RUNS = Number(process.env.VMCTL_FRONT_FUZZ_RUNS ?? 40);
const SEED = process.env.VMCTL_FUZZ_SEED === undefined ? undefined : Number(process.env.VMCTL_FUZZ_SEED);

/**
 * `use` with a sandbox and a vmctld of its own; afterwards any daemon a CLI started on it,
 * the daemon and the sandbox go, whatever happened.
 */
async function withDaemon(use: (sb: Sandbox, daemon: Daemon) => Promise<void>): Promise<void> {
  const sb = sandbox("vmctl-front-");
  const daemon = await Daemon.start(sb);
  try {
    await use(sb, daemon);
  } finally {
    await stopAutoStarted(sb).catch(() => {});
    await teardown(sb, [daemon]);
  }
}

/** Deletes every service of the sandbox's daemon, so each command line starts from nothing. */
async function clean(daemon: Daemon): Promise<void> {
  for (const s of await daemon.client.list()) await daemon.client.delete(s.id, { force: true });
}

/** A result with what differs by nature between two runs masked: service ids, ages, dates. */
function comparable(r: CliResult): CliResult {
  const mask = (s: string) =>
    s
      .replace(/\b[0-9a-f]{16}\b/g, "<id>")
      .replace(/\d+[smhd]$/gm, "<age>")
      .replace(/"(createdAt|updatedAt|at)": "[^"]*"/g, '"$1": "<date>"');
  return { code: r.code, stdout: mask(r.stdout), stderr: mask(r.stderr) };
}

/** Runs `args` with each front in turn, from a clean daemon each time. */
async function bothFronts(sb: Sandbox, daemon: Daemon, args: readonly string[]): Promise<{ native: CliResult; node: CliResult }> {
  const native = await vmctl(sb, args, { front: "native" });
  await clean(daemon);
  const node = await vmctl(sb, args, { front: "node" });
  await clean(daemon);
  return { native, node };
}

/** Text with no NUL (argv cannot carry one), any other code point welcome. */
const text = (maxLength: number) => fc.string({ unit: "binary", maxLength }).map((s) => s.replaceAll("\0", ""));
const keyValue = fc.tuple(fc.oneof(fc.stringMatching(/^[A-Z_][A-Z0-9_]{0,8}$/), text(12)), text(24)).map(([k, v]) => `${k}=${v}`);

/** A `vmctl run` command line: the flags the front serves, values good and bad, and some it does not serve. */
function runLine(rootfs: string): fc.Arbitrary<string[]> {
  const w = <T>(weight: number, arbitrary: fc.Arbitrary<T>) => ({ weight, arbitrary });
  const flag = fc.oneof(
    w(3, fc.constant(["--rm"])),
    w(2, fc.constantFrom("oci", "lxc").map((t) => ["--target", t])),
    w(1, fc.constantFrom("no-such-target", "é", "").map((t) => [`--target=${t}`])),
    w(2, fc.stringMatching(/^[a-z][a-z0-9-]{0,12}$/).map((n) => ["--name", n])),
    w(1, text(16).map((n) => ["--name", n])),
    w(3, keyValue.map((kv) => ["-e", kv])),
    w(1, keyValue.map((kv) => [`--env=${kv}`])),
    w(2, keyValue.map((kv) => ["--label", kv])),
    w(1, text(10).map((bad) => ["-e", bad])),
    w(1, fc.constantFrom(["-d"], ["-v", `${rootfs}:/mnt`], ["--bogus"])),
  );
  const image = fc.oneof(w(8, fc.constant([rootfs])), w(1, fc.constant([])), w(1, fc.constant(["/no/such/rootfs"])), w(1, text(12).map((s) => [s])));
  const command = fc.oneof(
    w(4, fc.tuple(text(40), fc.integer({ min: 0, max: 255 })).map(([out, code]) => ["--", "sh", "-c", 'printf "%s" "$1"; printf "%s" "$1" >&2; exit $2', "sh", out, String(code)])),
    w(2, fc.array(text(16), { maxLength: 4 }).map((words) => ["--", "echo", ...words])),
    w(2, fc.constant(["--", "sh", "-c", "env | grep -v -e ^HOSTNAME= -e ^HOME= | sort"])),
    w(1, fc.constant(["--", "sh", "-c", "kill -9 $$"])),
    w(1, fc.constant(["--", "no-such-command"])),
    w(1, fc.constant([])),
  );
  return fc.tuple(fc.array(flag, { maxLength: 5 }), image, command).map(([flags, img, cmd]) => ["run", ...flags.flat(), ...img, ...cmd]);
}

test.serial("run: the native front prints what the Node CLI prints and exits with its code, over generated command lines", async (t) => {
  t.timeout(600_000);
  await withDaemon(async (sb, daemon) => {
    const outcomes = { ok: 0, failed: 0 };
    await fc.assert(
      fc.asyncProperty(runLine(sb.rootfs), async (args) => {
        const both = await bothFronts(sb, daemon, args);
        const [native, node] = [comparable(both.native), comparable(both.node)];
        if (native.code !== node.code || native.stdout !== node.stdout || native.stderr !== node.stderr) {
          throw new Error(`vmctl ${JSON.stringify(args)}:\n  native ${JSON.stringify(native)}\n  node   ${JSON.stringify(node)}`);
        }
        outcomes[node.code === 0 ? "ok" : "failed"]++;
      }),
      { numRuns: RUNS, includeErrorInReport: true, ...(SEED === undefined ? {} : { seed: SEED }) },
    );
    t.log(`${RUNS} command lines: ${outcomes.ok} exited 0, ${outcomes.failed} did not`);
    t.true(outcomes.ok > 0 && outcomes.failed > 0, "both successes and failures were compared");
    t.deepEqual(runcList(sb.runcRoot), []);
  });
});

test.serial("ps and ps -a: the native front's table is the Node CLI's", async (t) => {
  t.timeout(120_000);
  await withDaemon(async (sb, daemon) => {
    const c = daemon.client;
    await c.create({ target: "oci", name: "made", spec: { rootfs: sb.rootfs, args: ["true"] }, labels: {}, dependsOn: [], start: false });
    await c.create({ target: "oci", name: "runs", spec: { rootfs: sb.rootfs, args: ["sleep", "60"] }, labels: { a: "b" }, dependsOn: [], start: true });
    const exited = await c.create({ target: "oci", name: "ended-é", spec: { rootfs: sb.rootfs, args: ["sh", "-c", "exit 5"] }, labels: {}, dependsOn: [], start: true }).catch(
      // a name the daemon refuses: the others make the table
      () => c.create({ target: "oci", name: "ended", spec: { rootfs: sb.rootfs, args: ["sh", "-c", "exit 5"] }, labels: {}, dependsOn: [], start: true }),
    );
    await c.wait(exited.id);
    for (const args of [["ps"], ["ps", "-a"], ["ps", "--all"]]) {
      const native = await vmctl(sb, args, { front: "native" });
      const node = await vmctl(sb, args, { front: "node" });
      t.is(native.code, 0, native.stderr);
      // The AGE column may tick between the two commands: it is compared as a pattern.
      t.deepEqual(native.stdout.replace(/\d+[smhd]$/gm, "<age>"), node.stdout.replace(/\d+[smhd]$/gm, "<age>"), args.join(" "));
      t.deepEqual([native.code, native.stderr], [node.code, node.stderr]);
    }
    const all = (await vmctl(sb, ["ps", "-a"], { front: "native" })).stdout;
    t.regex(all, /^ID +NAME +TARGET +PHASE +ADDRESS +EXIT +AGE\n/);
    t.is(all.trim().split("\n").length, 4, all);
    t.regex(all, /ended\S* +oci +exited +- +5 +\d+s/);
  });
});

test.serial("what the front does not serve reaches the Node CLI untouched: help, version, other verbs and flags, usage errors", async (t) => {
  t.timeout(120_000);
  await withDaemon(async (sb, daemon) => {
    await daemon.client.create({ target: "oci", name: "web", spec: { rootfs: sb.rootfs, args: ["sh", "-c", "echo hello-é; sleep 60"] }, labels: {}, dependsOn: [], start: true });
    await until("web's output", async () => (await vmctl(sb, ["logs", "web"])).stdout.includes("hello"));
    const lines = [["--help"], ["--version"], ["run", "--help"], ["ps", "--json"], ["ps", "--filter", "target=oci"], ["logs", "web"], ["inspect", "web"], ["bogus"], ["run", "-e", "NO_EQUALS", sb.rootfs], ["ps", "--", "x"], ["exec", "web", "--", "echo", "ünïcödé", "\u0007"]];
    for (const args of lines) {
      const native = await vmctl(sb, args, { front: "native" });
      const node = await vmctl(sb, args, { front: "node" });
      t.deepEqual(comparable(native), comparable(node), args.join(" "));
    }
    t.is((await vmctl(sb, ["bogus"], { front: "native" })).code, 2);
  });
});

test.serial("with no daemon running the front hands over, and the Node CLI starts one", async (t) => {
  t.timeout(60_000);
  const sb = sandbox("vmctl-front-");
  try {
    const run = await vmctl(sb, ["run", "--rm", sb.rootfs, "--", "sh", "-c", "echo hi; exit 3"], { front: "native" });
    t.deepEqual(run, { code: 3, stdout: "hi\n", stderr: "" });
    t.true(processesMentioning(sb.socket).length > 0, "a vmctld was started on the sandbox's socket");
    // Now it runs, the front serves ps itself.
    t.deepEqual(await vmctl(sb, ["ps", "-a"], { front: "native" }), { code: 0, stdout: "ID  NAME  TARGET  PHASE  ADDRESS  EXIT  AGE\n", stderr: "" });
  } finally {
    await stopAutoStarted(sb).catch(() => {});
    await teardown(sb);
  }
});

test.serial("Ctrl-C on the front's run stops the service, which decides its exit; --rm leaves nothing", async (t) => {
  t.timeout(60_000);
  await withDaemon(async (sb, daemon) => {
    const live = vmctlLive(sb, ["run", "--rm", "--name", "trapper", sb.rootfs, "--", "sh", "-c", "trap 'echo got TERM; exit 3' TERM; echo ready; while :; do sleep 0.1; done"], "native");
    await until("the workload to be ready", () => live.output().includes("ready\n"));
    live.child.kill("SIGINT");
    const result = await live.done;
    t.deepEqual(result, { code: 3, stdout: "ready\ngot TERM\n", stderr: "" });
    t.deepEqual(await daemon.client.list(), []);
    t.deepEqual(runcList(sb.runcRoot), []);
  });
});

test.serial("vmctld lost in the middle of the front's run: the Node CLI takes over with a daemon started again, the exit code arrives, --rm removes the service", async (t) => {
  t.timeout(90_000);
  await withDaemon(async (sb, daemon) => {
    const live = vmctlLive(sb, ["run", "--rm", "--name", "survivor", sb.rootfs, "--", "sh", "-c", "echo started; sleep 3; exit 4"], "native");
    await until("the workload to start", () => live.output().includes("started\n"));
    await daemon.kill9();
    const result = await live.done;
    t.is(result.code, 4, result.stderr);
    t.is(result.stdout, "started\n");
    t.is(result.stderr, "vmctl: lost vmctld while following survivor's output; waiting for its exit\n");
    t.true(processesMentioning(sb.socket).length > 0, "the Node CLI started a vmctld again");
    t.deepEqual(JSON.parse((await vmctl(sb, ["ps", "-a", "--json"])).stdout), []);
    t.deepEqual(runcList(sb.runcRoot), []);
  });
});
