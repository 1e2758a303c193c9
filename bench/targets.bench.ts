// `vmctl run --rm` overhead per target over the target's own tool, measured in the same
// run, interleaved (these machines are shared and noisy): docker (`docker run --rm`, same
// image) and lxc (`lxc-execute` with the config the lxc target writes for the same spec).
// The oci row against `runc run` is in orchestrator.bench.ts. Medians; `overhead` is
// vmctl's median minus the peer's. And a microVM's `vmctl run --rm` of the exit_code
// test guest, which no peer here does.
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { findBinary } from "@vmctl/core/target-kit";
import { rootfsConfig } from "../plugins/lxc/src/config.js";
import { cgroupVersion } from "../plugins/lxc/src/index.js";
import { parseLxcSpec } from "../plugins/lxc/src/spec.js";
import { ensureTestImage } from "../plugins/docker/src/testing/context.js";
import { ensureDocker, type DockerDaemon } from "../tests/support/dockerd.js";
import { cliArgv, Daemon, sandbox, teardown, type Sandbox } from "../tests/orchestrator/helpers/sandbox.js";
import { requireGuestElf } from "../tests/guests/harness.js";
import { timeCommand } from "./lib/process.js";
import { median, report, reportError } from "./lib/report.js";

const RUNS = 15;
const COMMON_CONF = "/usr/share/lxc/config/common.conf";

/** Runs vmctl and the peer alternately RUNS times and reports medians, the ratio and the overhead. */
async function compare(name: string, vmctl: () => Promise<number>, peer: () => Promise<number>, peerName: string): Promise<void> {
  const ours: number[] = [];
  const theirs: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    ours.push(await vmctl());
    theirs.push(await peer());
  }
  report({ name, unit: "ms", value: median(ours), baseline: median(theirs), baselineName: peerName, runs: RUNS, target: name.includes("docker") ? "overhead <= 80 ms" : "overhead <= 60 ms" });
}

/** `lxc-execute` of `true` over the same rootfs with the config the lxc target writes. */
function lxcPeer(sb: Sandbox): () => Promise<number> {
  const lxcExecute = findBinary("lxc-execute");
  if (!lxcExecute) throw new Error("lxc-execute is not installed (npm run setup installs lxc)");
  const lxcpath = join(sb.dir, "lxc-peer");
  mkdirSync(lxcpath, { recursive: true });
  const spec = parseLxcSpec({ rootfs: sb.rootfs, args: ["true"] });
  const configFile = join(lxcpath, "config");
  const opts = {
    serviceId: "bench",
    hostname: "bench",
    commonConf: existsSync(COMMON_CONF) ? COMMON_CONF : undefined,
    cgroup: cgroupVersion(),
    initPidFile: join(lxcpath, "init.pid"),
    labels: {},
  };
  writeFileSync(configFile, rootfsConfig({ ...spec, rootfs: sb.rootfs }, opts));
  let n = 0;
  return async () => {
    const name = `bench-${n++}`;
    const ms = await timeCommand(lxcExecute, ["-P", lxcpath, "-n", name, "-f", configFile, "--", "true"]);
    rmSync(join(lxcpath, name), { recursive: true, force: true });
    return ms;
  };
}

const sb = sandbox("vmctl-bench-targets-");
let daemon: Daemon | undefined;
let docker: DockerDaemon | undefined;
try {
  try {
    docker = await ensureDocker();
  } catch (err) {
    reportError("vmctl_run_rm_docker_wall", `no Docker daemon: ${(err as Error).message}`);
  }
  const config = join(sb.dir, "config.json");
  writeFileSync(config, JSON.stringify({ targets: docker ? { docker: { socket: docker.socket } } : {} }));
  daemon = await Daemon.start(sb, { extraArgs: ["--config", config] });
  // `vmctl` as users type it: the native front (crates/cli), which serves run itself.
  const vmctl = (...args: string[]) => () => {
    const [command, ...argv] = cliArgv("native", ["run", "--rm", ...args]);
    return timeCommand(command, argv, sb.env);
  };

  if (docker) {
    const image = await ensureTestImage(docker.socket);
    await compare(
      "vmctl_run_rm_docker_wall",
      vmctl("--target", "docker", image, "--", "true"),
      () => timeCommand("docker", ["run", "--rm", "--network", "none", image, "true"], docker?.env),
      "docker run --rm (same image, same daemon)",
    );
  }
  try {
    // A microVM end to end through vmctld (VMM spawned, test guest booted on this host's
    // KVM, its exit code read, everything removed): no peer tool does the same here.
    const guestRun = vmctl("--target", "microvm", requireGuestElf(), "--", "vmctl.test=exit_code", "vmctl.exit=0");
    await guestRun();
    const runs: number[] = [];
    for (let i = 0; i < RUNS; i++) runs.push(await guestRun());
    report({ name: "vmctl_run_rm_microvm_test_guest_wall", unit: "ms", value: median(runs), runs: RUNS, target: "<= 120 ms" });
  } catch (err) {
    reportError("vmctl_run_rm_microvm_test_guest_wall", (err as Error).message);
  }
  try {
    await compare("vmctl_run_rm_lxc_wall", vmctl("--target", "lxc", sb.rootfs, "--", "true"), lxcPeer(sb), "lxc-execute (same rootfs, the target's config)");
  } catch (err) {
    reportError("vmctl_run_rm_lxc_wall", (err as Error).message);
  }
} finally {
  await teardown(sb, daemon ? [daemon] : []);
  docker?.release();
}
