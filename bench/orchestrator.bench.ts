// Orchestrator benchmarks (daemon already running, real runc):
//   vmctl run --rm of a trivial oci workload vs `runc run` on an equivalent bundle and
//   vmctl run vs `docker run --rm` of the same rootfs (docker import), in the same run;
//   100 concurrent creates over gRPC (services/s); idle vmctld RSS; `vmctl ps` with 1,000
//   services and `vmctl --version`, each against `node -e 0` run in turn with it.
//   Medians. A peer that cannot run here is reported as an error line. `vmctl` is what
//   users type: the native front (crates/cli), which serves ps and run itself and hands
//   the rest (--version among them) to the Node CLI; the Node CLI alone is measured in
//   the same runs and given as conditions.nodeCliMs. Each CLI figure follows one
//   unmeasured run, which writes the Node CLI's code cache (ts/cli/src/bin.ts) as any
//   user's first command does.
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { connect } from "@vmctl/client";
import { buildRuntimeConfig, parseOciSpec } from "vmctl-plugin-oci";
import { cliArgv, Daemon, sandbox, teardown, type CliFront, type Sandbox } from "../tests/orchestrator/helpers/sandbox.js";
import { requireRunc } from "../plugins/oci/src/testing/context.js";
import { ensureDocker } from "../tests/support/dockerd.js";
import { processRssMib, timeCommand } from "./lib/process.js";
import { median, report, reportError } from "./lib/report.js";

const RUNS = 15;
/** The CLI start-up figures are a few ms apart on a busy machine: more runs. */
const CLI_RUNS = 31;

/** `command` and `peer` run in turn `runs` times (after one unmeasured run of each): their medians. */
async function againstPeer(
  runs: number,
  command: () => Promise<number>,
  peer: () => Promise<number>,
): Promise<{ value: number; baseline: number }> {
  await command();
  await peer();
  const values: number[] = [];
  const baselines: number[] = [];
  for (let i = 0; i < runs; i++) {
    values.push(await command());
    baselines.push(await peer());
  }
  return { value: median(values), baseline: median(baselines) };
}

const nodeStart = (): Promise<number> => timeCommand(process.execPath, ["-e", "0"]);

/** Milliseconds of `vmctl ARGS` with `front` against the sandbox's daemon. */
function vmctlMs(sb: Sandbox, args: readonly string[], front: CliFront = "native"): Promise<number> {
  const [command, ...argv] = cliArgv(front, args);
  return timeCommand(command, argv, sb.env);
}

/** `runc run` on a bundle equivalent to what the oci target generates for the same spec. */
function runcBundle(sb: Sandbox): { root: string; bundle: string } {
  const bundle = join(sb.dir, "runc-bundle");
  mkdirSync(bundle, { recursive: true });
  const spec = parseOciSpec({ rootfs: sb.rootfs, args: ["true"] });
  writeFileSync(join(bundle, "config.json"), JSON.stringify(buildRuntimeConfig(spec, { hostname: "bench", cgroupsPath: "vmctl-bench-runc", annotations: {} })));
  const root = join(sb.dir, "runc-root");
  mkdirSync(root, { recursive: true });
  return { root, bundle };
}

interface Docker {
  readonly env: NodeJS.ProcessEnv;
  readonly image: string;
  stop(): Promise<void>;
}

/**
 * A docker daemon: the host's if one answers, else the private one tests/support/dockerd.ts
 * starts (shared with the docker target's tests; it stops itself once nobody uses it).
 */
async function docker(sb: Sandbox): Promise<Docker> {
  const image = "vmctl-bench-rootfs:latest";
  const daemon = await ensureDocker();
  const env = daemon.env;
  const tar = spawnSync("sh", ["-c", `tar -C '${sb.rootfs}' -c . | docker import - ${image}`], { env, encoding: "utf8" });
  if (tar.status !== 0) {
    daemon.release();
    throw new Error(`docker import: ${tar.stderr.trim()}`);
  }
  const stop = async (): Promise<void> => {
    spawnSync("docker", ["rmi", "-f", image], { env, stdio: "ignore" });
    daemon.release();
  };
  return { env, image, stop };
}

const sb = sandbox("vmctl-bench-");
let daemon: Daemon | undefined;
try {
  daemon = await Daemon.start(sb);
  // Idle RSS: right after start-up, after a moment of quiet.
  await sleep(1000);
  report({ name: "vmctld_idle_rss", unit: "MiB", value: processRssMib(daemon.pid), runs: 1, target: "<= 80 MiB" });

  // The CLI's own start-up: no daemon call.
  const version = await againstPeer(CLI_RUNS, () => vmctlMs(sb, ["--version"]), nodeStart);
  report({ name: "vmctl_version_wall", unit: "ms", ...version, baselineName: "node -e 0", runs: CLI_RUNS, target: "<= 1.3x node -e 0" });

  const runc = requireRunc();
  const { root, bundle } = runcBundle(sb);
  const runTrue = ["run", "--rm", sb.rootfs, "--", "true"];
  const vmctlRuns: number[] = [];
  const nodeCliRuns: number[] = [];
  const runcRuns: number[] = [];
  await vmctlMs(sb, runTrue, "node");
  for (let i = 0; i < RUNS; i++) {
    vmctlRuns.push(await vmctlMs(sb, runTrue));
    runcRuns.push(await timeCommand(runc, ["--root", root, "run", "--bundle", bundle, `bench-${i}`]));
    nodeCliRuns.push(await vmctlMs(sb, runTrue, "node"));
  }
  report({
    name: "vmctl_run_rm_oci_wall",
    unit: "ms",
    value: median(vmctlRuns),
    baseline: median(runcRuns),
    baselineName: "runc run (same bundle)",
    runs: RUNS,
    target: "overhead <= 60 ms",
    conditions: { nodeCliMs: median(nodeCliRuns) },
  });

  let dockerPeer: Docker | undefined;
  try {
    dockerPeer = await docker(sb);
    const dockerRuns: number[] = [];
    const vmctlAgain: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      dockerRuns.push(await timeCommand("docker", ["run", "--rm", "--network", "none", dockerPeer.image, "true"], dockerPeer.env));
      vmctlAgain.push(await vmctlMs(sb, runTrue));
    }
    report({ name: "vmctl_run_rm_vs_docker_wall", unit: "ms", value: median(vmctlAgain), baseline: median(dockerRuns), baselineName: "docker run --rm (docker import of the same rootfs)", runs: RUNS, target: "<= 0.4x docker" });
  } catch (err) {
    reportError("vmctl_run_rm_vs_docker_wall", `docker peer unavailable here: ${(err as Error).message}`);
  } finally {
    await dockerPeer?.stop();
  }

  // 100 concurrent creates (created, not started) over gRPC, several rounds.
  const client = connect(sb.socket);
  const spec = { rootfs: sb.rootfs, args: ["true"] };
  const rates: number[] = [];
  let succeeded = 0;
  for (let round = 0; round < 5; round++) {
    const start = performance.now();
    const results = await Promise.allSettled(Array.from({ length: 100 }, () => client.create({ target: "oci", spec })));
    const seconds = (performance.now() - start) / 1000;
    const ok = results.filter((r) => r.status === "fulfilled");
    succeeded += ok.length;
    rates.push(ok.length / seconds);
    for (const r of ok) await client.delete((r as PromiseFulfilledResult<{ id: string }>).value.id);
  }
  report({ name: "oci_concurrent_creates", unit: "services/s", value: median(rates), runs: rates.length, target: ">= 200/s, 100/100 succeed" });
  report({ name: "oci_concurrent_creates_succeeded", unit: "of 100", value: succeeded / rates.length, runs: rates.length });

  // vmctl ps with 1,000 services, against a bare `node -e 0` start as the floor.
  for (let wave = 0; wave < 10; wave++) await Promise.all(Array.from({ length: 100 }, () => client.create({ target: "oci", spec, labels: { bench: "ps" } })));
  const ps = await againstPeer(CLI_RUNS, () => vmctlMs(sb, ["ps", "-a"]), nodeStart);
  const psNodeCli = await againstPeer(CLI_RUNS, () => vmctlMs(sb, ["ps", "-a"], "node"), nodeStart);
  report({ name: "vmctl_ps_1000_services_wall", unit: "ms", ...ps, baselineName: "node -e 0", runs: CLI_RUNS, target: "<= 100 ms", conditions: { nodeCliMs: psNodeCli.value } });
  report({ name: "vmctld_rss_1000_services", unit: "MiB", value: processRssMib(daemon.pid), runs: 1 });
  for (const s of await client.list({ labels: ["bench=ps"] })) await client.delete(s.id);
  client.close();
} finally {
  await teardown(sb, [daemon]);
}
