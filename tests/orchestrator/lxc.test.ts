// The lxc target through vmctld and the CLI, with real LXC (lxc-execute under a shim).
import { readdirSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { Daemon, sandbox, teardown, vmctl, type Sandbox } from "./helpers/sandbox.js";

let sb: Sandbox;
let daemon: Daemon;

test.before(async () => {
  sb = sandbox("vmctl-e2e-lxc-");
  daemon = await Daemon.start(sb);
});
test.after.always(async () => {
  await teardown(sb, [daemon]);
});

/** Containers the lxc target has under its private lxcpath (made when the target loads). */
function lxcContainers(): string[] {
  return readdirSync(join(sb.stateDir, "targets", "lxc", "containers"));
}

test.serial("vmctl targets lists lxc with its capabilities", async (t) => {
  const result = await vmctl(sb, ["targets", "--json"]);
  t.is(result.code, 0, result.stderr);
  const lxc = (JSON.parse(result.stdout) as { name: string; status: string; capabilities: Record<string, boolean> }[]).find((x) => x.name === "lxc");
  t.is(lxc?.status, "ready", result.stdout);
  t.true(lxc?.capabilities.exec);
  t.true(lxc?.capabilities.network);
});

// Networks (the orchestrator's, in namespaces of the test's own) are proven by plugins/lxc/src/bridge.test.ts.
test.serial("the old spec.network is refused in one line naming spec.network, and nothing is made", async (t) => {
  const result = await vmctl(sb, ["run", "--rm", "--target", "lxc", "--spec", JSON.stringify({ network: "bridge" }), sb.rootfs, "--", "true"]);
  t.not(result.code, 0, result.stderr);
  t.regex(result.stderr, /network/);
  t.regex(result.stderr, /--network/);
  t.deepEqual(JSON.parse((await vmctl(sb, ["ps", "-a", "--json"])).stdout), []);
  t.deepEqual(lxcContainers(), []);
});

test.serial("vmctl run --rm --target lxc ROOTFS -- CMD prints stdout and stderr apart, exits with the code, leaves no container", async (t) => {
  const result = await vmctl(sb, ["run", "--rm", "--target", "lxc", "-e", "WHO=lxc", sb.rootfs, "--", "sh", "-c", 'echo "hi $WHO"; echo oops >&2; exit 3']);
  t.is(result.code, 3, result.stderr);
  t.is(result.stdout, "hi lxc\n");
  t.is(result.stderr, "oops\n");
  t.deepEqual(JSON.parse((await vmctl(sb, ["ps", "-a", "--json"])).stdout), []);
  t.deepEqual(lxcContainers(), []);
});

test.serial("a template that is not installed is refused at create in one line naming spec.template, and nothing is made", async (t) => {
  const result = await vmctl(sb, ["run", "--rm", "--target", "lxc", "--spec", JSON.stringify({ template: "no-such-template" }), "--", "true"]);
  t.not(result.code, 0);
  t.log(result.stderr.trim());
  t.is(result.stdout, "");
  t.is(result.stderr.trim().split("\n").length, 1, result.stderr);
  t.regex(result.stderr, /template/);
  t.regex(result.stderr, /no-such-template/);
  t.deepEqual(JSON.parse((await vmctl(sb, ["ps", "-a", "--json"])).stdout), []);
  t.deepEqual(lxcContainers(), []);
});
