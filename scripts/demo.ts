// The demo: the VMM booting a microVM through its own API, then the orchestrator
// running the same guest, an OCI container, an LXC container and a Docker container
// with `vmctl run`, as a user would.
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { connect } from "@vmctl/client";
import { processesMentioning } from "@vmctl/plugin-conformance";
import { ensureTestImage } from "../plugins/docker/src/testing/context.js";
import { bootGuest, requireGuestElf } from "../tests/guests/harness.js";
import { ensureDocker } from "../tests/support/dockerd.js";

// `vmctl` as the build links it onto the PATH: the native front (crates/cli), which hands
// the verbs it does not serve to the Node CLI (ts/cli/dist/bin.cjs).
const CLI = fileURLToPath(new URL("../target/x86_64-unknown-linux-gnu/release/vmctl", import.meta.url));
const SERVER = fileURLToPath(new URL("../ts/server/dist/bin.js", import.meta.url));

function banner(text: string): void {
  console.log(`\n==> ${text}`);
}

/** A minimal rootfs: static busybox and the applets the demo uses. */
function busyboxRootfs(dir: string): string {
  mkdirSync(join(dir, "bin"), { recursive: true });
  copyFileSync("/bin/busybox", join(dir, "bin/busybox"));
  chmodSync(join(dir, "bin/busybox"), 0o755);
  for (const applet of ["sh", "echo", "uname", "cat"]) symlinkSync("busybox", join(dir, "bin", applet));
  for (const d of ["proc", "sys", "dev", "tmp", "etc"]) mkdirSync(join(dir, d), { recursive: true });
  return dir;
}

// 1. The VMM alone, through its gRPC API.
banner('vmctl-vmm: boot test guest "hello" through the VMM API (1 vCPU, 32 MiB)');
const result = await bootGuest({ test: "hello" });
for (const line of result.console.trimEnd().split("\n")) console.log(`  console | ${line}`);
const exit = result.state.exit;
const bootDone = result.metrics.bootDoneUs === undefined ? "never signalled" : `${(result.metrics.bootDoneUs / 1000).toFixed(2)} ms after Start`;
const exits = Object.values(result.metrics.vmExits).reduce((a, b) => a + b, 0);
console.log(`  VM exited: ${exit?.reason} (code ${exit?.code}); boot-done ${bootDone}; ${exits} VM exits handled`);
if (exit?.reason !== "guest-exit" || exit.code !== 0) process.exit(1);

// 2. The orchestrator: a private vmctld for the demo, driven by the vmctl CLI.
const scratch = mkdtempSync(join(tmpdir(), "vmctl-demo-"));
const env = { ...process.env, VMCTL_SOCKET: join(scratch, "vmctld.sock"), VMCTL_STATE_DIR: join(scratch, "state") };
// The docker target needs a Docker daemon: the host's, or a private one for the demo.
banner("docker: the host's daemon if one answers, else a private one");
const docker = await ensureDocker();
const dockerImage = await ensureTestImage(docker.socket);
console.log(`  using ${docker.socket}${docker.private ? " (private, stops itself after the demo)" : ""}; image ${dockerImage}`);
const config = join(scratch, "config.json");
writeFileSync(config, JSON.stringify({ targets: { docker: { socket: docker.socket } } }));
const daemon = spawn(process.execPath, [SERVER, "--socket", env.VMCTL_SOCKET, "--state-dir", env.VMCTL_STATE_DIR, "--config", config], {
  stdio: "ignore",
});
function vmctl(...args: string[]): number {
  const shown = args.map((a) => (/[\s$();]/.test(a) ? `'${a}'` : a));
  console.log(`  $ vmctl ${shown.join(" ")}`);
  const run = spawnSync(CLI, args, { env, stdio: "inherit" });
  console.log(`  (exit code ${run.status})`);
  return run.status ?? 1;
}
let failed = false;
try {
  // Wait for this demo's own daemon to answer (a ping starts nothing, unlike the CLI).
  const ready = connect(env.VMCTL_SOCKET);
  for (let i = 0; ; i++) {
    if (daemon.exitCode !== null) throw new Error(`vmctld exited (${daemon.exitCode}) before it answered`);
    try {
      await ready.ping(1000);
      break;
    } catch (err) {
      if (i > 300) throw new Error(`vmctld did not answer on ${env.VMCTL_SOCKET} within 30 s: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  ready.close();
  banner("vmctld: the targets this host offers");
  vmctl("targets");

  banner("vmctl run on the microvm target: the same guest, through the orchestrator");
  failed ||= vmctl("run", "--rm", "--target", "microvm", requireGuestElf(), "--", "vmctl.test=exit_code", "vmctl.exit=7") !== 7;

  banner("images: the built-in busybox image into vmctld's store, then a microVM with its disks");
  failed ||= vmctl("pull", "default") !== 0;
  vmctl("images");
  const guestKernel = JSON.stringify({ kernel: requireGuestElf() });
  failed ||= vmctl("run", "--rm", "--target", "microvm", "--disk-size", "1G", "--spec", guestKernel, "default", "--", "vmctl.test=exit_code", "vmctl.exit=6") !== 6;
  failed ||= vmctl("rmi", "default") !== 0;

  banner("vmctl run on the oci target: a busybox container under runc");
  const rootfs = busyboxRootfs(join(scratch, "rootfs"));
  failed ||= vmctl("run", "--rm", rootfs, "--", "sh", "-c", "echo hello from an OCI container on $(uname -s); exit 3") !== 3;

  banner("vmctl run on the lxc target: the same rootfs under lxc-execute");
  failed ||= vmctl("run", "--rm", "--target", "lxc", rootfs, "--", "sh", "-c", "echo hello from an LXC container; exit 4") !== 4;

  banner("vmctl run on the docker target: a local busybox image through the Docker API");
  failed ||= vmctl("run", "--rm", "--target", "docker", dockerImage, "--", "sh", "-c", "echo hello from a Docker container; exit 5") !== 5;

  banner("vmctl ps -a: nothing left behind (--rm)");
  vmctl("ps", "-a");
} finally {
  if (daemon.exitCode === null) {
    daemon.kill("SIGTERM");
    await new Promise((r) => daemon.once("exit", r));
  }
  // Nothing the demo started may outlive it: no daemon, VMM, shim or container process.
  const left = processesMentioning(scratch);
  if (left.length > 0) {
    console.error(`demo: processes left behind under ${scratch}: ${left.join(", ")}`);
    failed = true;
  }
  rmSync(scratch, { recursive: true, force: true });
  docker.release();
}
process.exitCode = failed ? 1 : 0;
