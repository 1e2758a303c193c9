// vmctl exec / pause / resume through vmctld: on oci (real runc, which claims both) they
// work; on a target that claims neither (the process fixture) they are refused in one
// line before the target is called.
import test from "ava";
import { Daemon, PROCESS_PLUGIN_FIXTURE, sandbox, teardown, until, vmctl, type Sandbox } from "./helpers/sandbox.js";

let sb: Sandbox;
let daemon: Daemon;

test.before(async () => {
  sb = sandbox("vmctl-e2e-exec-");
  daemon = await Daemon.start(sb, { plugins: [PROCESS_PLUGIN_FIXTURE] });
});
test.after.always(async () => teardown(sb, [daemon]));

async function phaseOf(ref: string): Promise<string> {
  const inspect = await vmctl(sb, ["inspect", ref]);
  return (JSON.parse(inspect.stdout) as { phase: string }[])[0]?.phase ?? `inspect failed: ${inspect.stderr}`;
}

test.serial("exec runs inside a running oci service; pause freezes it (no output, exec refused), resume thaws it", async (t) => {
  const started = await vmctl(sb, ["run", "-d", "--name", "ticker", sb.rootfs, "--", "sh", "-c", "while :; do echo tick; sleep 0.05; done"]);
  t.is(started.code, 0, started.stderr);

  const exec = await vmctl(sb, ["exec", "ticker", "--", "sh", "-c", "echo in-exec; echo to-stderr >&2; exit 3"]);
  t.is(exec.code, 3, exec.stderr);
  t.is(exec.stdout, "in-exec\n");
  t.is(exec.stderr, "to-stderr\n");

  t.is((await vmctl(sb, ["pause", "ticker"])).code, 0);
  t.is(await phaseOf("ticker"), "paused");
  const frozen = (await vmctl(sb, ["logs", "ticker"])).stdout.length;
  await new Promise((r) => setTimeout(r, 400));
  t.is((await vmctl(sb, ["logs", "ticker"])).stdout.length, frozen, "a paused service prints nothing");
  const refused = await vmctl(sb, ["exec", "ticker", "--", "true"]);
  t.not(refused.code, 0);
  t.is(refused.stderr, "vmctl: cannot exec in service ticker: it is paused, not running\n");
  t.is((await vmctl(sb, ["pause", "ticker"])).code, 0, "pausing a paused service is a no-op");

  t.is((await vmctl(sb, ["resume", "ticker"])).code, 0);
  t.is(await phaseOf("ticker"), "running");
  await until("output after resume", async () => (await vmctl(sb, ["logs", "ticker"])).stdout.length > frozen);
  // sh as the container's pid 1 ignores SIGTERM: force it at once.
  t.is((await vmctl(sb, ["stop", "-t", "0", "ticker"])).code, 0);
  t.is((await vmctl(sb, ["rm", "ticker"])).code, 0);
});

test.serial("exec, pause and resume on a target that claims neither are refused in one line, and the service runs on", async (t) => {
  const started = await vmctl(sb, ["run", "-d", "--name", "plain", "--target", "process", "--spec", JSON.stringify({ args: ["sleep", "300"] })]);
  t.is(started.code, 0, started.stderr);
  for (const args of [["exec", "plain", "--", "true"], ["pause", "plain"], ["resume", "plain"]]) {
    const result = await vmctl(sb, args);
    t.not(result.code, 0, args.join(" "));
    t.regex(result.stderr, /^vmctl: target process does not support (exec|pause)\n$/);
  }
  const noCommand = await vmctl(sb, ["exec", "plain"]);
  t.is(noCommand.code, 2);
  t.is(noCommand.stderr, "vmctl: exec needs a command: vmctl exec SERVICE -- COMMAND...\n");
  t.is(await phaseOf("plain"), "running");
  t.is((await vmctl(sb, ["rm", "-f", "plain"])).code, 0);
});
