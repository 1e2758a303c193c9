// A plugin loaded from a path outside the repository registers a target the CLI can use.
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { Daemon, PROCESS_PLUGIN_FIXTURE, sandbox, teardown, vmctl } from "./helpers/sandbox.js";

test("--plugin PATH outside the repo registers target process; vmctl run --target process uses it", async (t) => {
  t.timeout(60_000);
  const sb = sandbox();
  const outside = mkdtempSync(join(tmpdir(), "vmctl-plugin-outside-"));
  let daemon: Daemon | undefined;
  try {
    const pluginDir = join(outside, "vmctl-plugin-process");
    cpSync(PROCESS_PLUGIN_FIXTURE, pluginDir, { recursive: true });
    daemon = await Daemon.start(sb, { plugins: [pluginDir] });

    const targets = JSON.parse((await vmctl(sb, ["targets", "--json"])).stdout) as { name: string; plugin: string; status: string }[];
    const processTarget = targets.find((x) => x.name === "process");
    t.is(processTarget?.status, "ready");
    t.is(processTarget?.plugin, pluginDir);

    const run = await vmctl(sb, ["run", "--rm", "--target", "process", "--spec", JSON.stringify({ args: ["sh", "-c", "echo from-process; exit 4"] })]);
    t.is(run.code, 4, run.stderr);
    t.is(run.stdout, "from-process\n");

    // This target has no run shorthand: IMAGE/COMMAND are refused with a pointer to --spec.
    const shorthand = await vmctl(sb, ["run", "--target", "process", "--", "echo", "hi"]);
    t.is(shorthand.code, 125);
    t.regex(shorthand.stderr, /^vmctl: spec: .*this target needs --spec\n$/);
    t.deepEqual(JSON.parse((await vmctl(sb, ["ps", "-a", "--json"])).stdout), []);
  } finally {
    await teardown(sb, [daemon]);
    rmSync(outside, { recursive: true, force: true });
  }
});
