// `vmctl run --target microvm` without a kernel, through vmctld: the daemon's kernel cache
// ($VMCTL_KERNEL_CACHE) gives the default kernel, and without one the create fails with
// FAILED_PRECONDITION on spec.kernel telling the user to run `vmctl kernel build`. On
// these PVM hosts Linux cannot boot, so the cache's default here is a test guest laid out
// as images/kernel/build lays out a kernel; the real cache's kernel is checked in
// ts/cli/src/commands/kernel.test.ts.
import { copyFileSync, mkdirSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { VmctlError } from "@vmctl/client";
import { requireGuestElf } from "../guests/harness.js";
import { Daemon, sandbox, serviceProcesses, teardown, vmctl } from "./helpers/sandbox.js";

test("no kernel given: the default kernel boots; none built: FAILED_PRECONDITION naming spec.kernel, one CLI line", async (t) => {
  t.timeout(90_000);
  const base = sandbox("vmctl-default-kernel-");
  const cache = join(base.dir, "kernel-cache");
  const sb = { ...base, env: { ...base.env, VMCTL_KERNEL_CACHE: cache } };
  let daemon: Daemon | undefined;
  try {
    daemon = await Daemon.start(sb, { env: sb.env });

    // Nothing built: the API says why, on the field, and what to do.
    const err = await daemon.client
      .create({ target: "microvm", run: { command: ["vmctl.test=exit_code"] }, start: true })
      .then(() => undefined, (e: unknown) => e);
    t.true(err instanceof VmctlError, String(err));
    t.is((err as VmctlError).code, "FAILED_PRECONDITION");
    t.is((err as VmctlError).details.field, "spec.kernel");
    t.regex((err as VmctlError).message, /^spec\.kernel: no kernel given, and no default guest kernel is built in .*: run `vmctl kernel build`/);
    const cli = await vmctl(sb, ["run", "--rm", "--target", "microvm", "--", "vmctl.test=exit_code", "vmctl.exit=7"]);
    t.is(cli.code, 125);
    t.is(cli.stdout, "");
    t.is(cli.stderr, `vmctl: spec.kernel: no kernel given, and no default guest kernel is built in ${cache}: run \`vmctl kernel build\` (or give the kernel's path)\n`);
    t.deepEqual(await daemon.client.list(), [], "nothing was kept");

    // Built while the daemon runs (here: the test guest in a key directory): used at once.
    const key = "00000000000000aa";
    mkdirSync(join(cache, key), { recursive: true });
    copyFileSync(requireGuestElf(), join(cache, key, "vmlinux"));
    symlinkSync(key, join(cache, "default"));
    const run = await vmctl(sb, ["run", "--name", "dk", "--target", "microvm", "--", "vmctl.test=exit_code", "vmctl.exit=7"]);
    t.is(run.code, 7, run.stderr);
    t.regex(run.stdout, /^exit=7$/m);
    // The record names the kernel by its key path, not through `default`.
    const [inspected] = JSON.parse((await vmctl(sb, ["inspect", "dk"])).stdout) as { spec: { kernel: string } }[];
    t.is(inspected?.spec.kernel, join(cache, key, "vmlinux"));
    t.is((await vmctl(sb, ["rm", "dk"])).code, 0);
    t.deepEqual(serviceProcesses(sb), [], "no VMM process left");
  } finally {
    await teardown(sb, [daemon]);
  }
});
