// Run inside L1 (or on a hardware-KVM host by `npm run test:linux`), by
// built-kernel.suite.ts: the whole orchestrator as a user runs it — the built CLI
// (ts/cli/dist/bin.cjs), the vmctld it starts on demand, the microvm plugin and the
// release vmctl-vmm — one `vmctl` command per case, in turn, against a vmctld this script
// starts first (`vmctl daemon`) and stops last (SIGTERM). Each case is one JSON line on
// stdout and RESULTS_DIR/<name>.json: exit code, stdout, stderr, wall time, and the
// vmctl-vmm processes and the services' sockets and disks left afterwards; so are the daemon's start ("daemon-started") and
// stop ("daemon-stopped").
//
//   node tests/nested/l1/linux-cli.mjs PLAN.json
//
// A plan: { "resultsDir", "stateDir", "socket", "cases": [{ name, args: [...], timeoutMs,
// input?: "text for the CLI's stdin", terminal?: { rows, cols }, node?: "script" }] }: `node`
// runs that script of the checkout (with `args`) in place of the CLI, e.g. vmctl-conformance.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { commandLineOf, liveVmms } from "./vmm-processes.mjs";

const [planPath] = process.argv.slice(2);
if (!planPath) {
  console.error("usage: linux-cli.mjs PLAN.json");
  process.exit(2);
}
const plan = JSON.parse(readFileSync(planPath, "utf8"));
// `vmctl` as users have it on their PATH: the native front (crates/cli, static), which
// serves run and ps itself and hands everything else to the Node CLI (ts/cli/dist/bin.cjs).
const cli = new URL("../../../target/x86_64-unknown-linux-gnu/release/vmctl", import.meta.url).pathname;
const env = { ...process.env, VMCTL_STATE_DIR: plan.stateDir, VMCTL_SOCKET: plan.socket };

/** vmctl-vmm processes serving VMs of this run's daemon (their socket lives under its state dir). */
const daemonVmms = () => liveVmms((pid) => commandLineOf(pid).includes(plan.stateDir));

/**
 * What a service of this run's daemon may leave behind, under its state dir: sockets other
 * than vmctld's own, writable layers, workload output files.
 */
function leftoverFiles(dir = plan.stateDir) {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries.flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return e.name === "images" ? [] : leftoverFiles(path);
    const isSocket = e.isSocket() || e.name.endsWith(".sock");
    return (isSocket && path !== plan.socket) || ["scratch.ext4", "stdout.log", "stderr.log"].includes(e.name) ? [path] : [];
  });
}

function write(result) {
  const line = JSON.stringify(result);
  console.log(line);
  const out = join(plan.resultsDir, `${result.name}.json`);
  writeFileSync(`${out}.tmp`, line);
  renameSync(`${out}.tmp`, out);
}

const shQuote = (word) => `'${word.replaceAll("'", "'\\''")}'`;

/**
 * The CLI's command line: as is, or on a terminal of `c.terminal`'s size that script(1)
 * makes, as a user's would be (vmctl exec -t puts it in raw mode and passes its size on).
 */
function cliCommand(c) {
  if (c.node) return [process.execPath, [new URL(`../../../${c.node}`, import.meta.url).pathname, ...c.args]];
  if (!c.terminal) return [cli, c.args];
  const line = [cli, ...c.args].map(shQuote).join(" ");
  return ["script", ["-qec", `stty rows ${c.terminal.rows} cols ${c.terminal.cols}; exec ${line}`, "/dev/null"]];
}

async function runCli(c) {
  const started = performance.now();
  const [command, args] = cliCommand(c);
  const child = spawn(command, args, { env, stdio: [c.input === undefined ? "ignore" : "pipe", "pipe", "pipe"] });
  // Typed input stays open on a terminal until the command ends (an EOF would be a ^D).
  if (c.input !== undefined) c.terminal ? child.stdin.write(c.input) : child.stdin.end(c.input);
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d) => (stdout += d));
  child.stderr.setEncoding("utf8").on("data", (d) => (stderr += d));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill("SIGKILL");
  }, c.timeoutMs ?? 60_000);
  const code = await new Promise((resolve) => child.once("close", (code, signal) => resolve(code ?? signal)));
  clearTimeout(timer);
  return { name: c.name, args: c.args, code, timedOut, stdout, stderr, ms: Math.round(performance.now() - started), leftoverVmms: daemonVmms(), leftoverFiles: leftoverFiles() };
}

/**
 * plan.registry: Debian's docker-registry on L1's loopback (storage in L1's throwaway
 * overlay), and the plan's OCI layout pushed to it with skopeo, for a case that pulls it.
 */
async function startRegistry(registry) {
  const dir = "/tmp/vmctl-l1-registry";
  const [address, port] = registry.host.split(":");
  spawnSync("mkdir", ["-p", `${dir}/data`]);
  // L1's loopback may be down (nothing in its init needs it).
  spawnSync("ip", ["link", "set", "lo", "up"]);
  writeFileSync(
    `${dir}/config.yml`,
    `version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: ${dir}/data\nhttp:\n  addr: ${address}:${port}\n`,
  );
  const child = spawn("/usr/bin/docker-registry", ["serve", `${dir}/config.yml`], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (d) => (stderr = (stderr + d).slice(-4000)));
  const started = performance.now();
  let up = false;
  for (let i = 0; i < 150 && !up && child.exitCode === null; i++) {
    up = spawnSync("bash", ["-c", `exec 3<>/dev/tcp/${address}/${port}`]).status === 0;
    if (!up) await sleep(100);
  }
  const pushed = up
    ? spawnSync("skopeo", ["copy", "--dest-tls-verify=false", `oci:${registry.layout}:${registry.tag}`, `docker://${registry.host}/${registry.repository}:${registry.tag}`], { encoding: "utf8", timeout: 120_000 })
    : { status: "registry did not listen", stdout: "", stderr };
  write({ name: "registry-ready", code: pushed.status, stdout: pushed.stdout, stderr: `${pushed.stderr}\n${stderr}`, ms: Math.round(performance.now() - started) });
  return child;
}
const registry = plan.registry ? await startRegistry(plan.registry) : undefined;

// vmctld, started the way `vmctl daemon` runs it (in the foreground, here in the
// background of this script): the CLI finds it serving and does not start its own, so a
// slow start under nesting does not count against `vmctl run`'s 30 s start timeout.
const daemonStarted = performance.now();
const daemon = spawn(cli, ["daemon"], { env, stdio: ["ignore", "pipe", "pipe"] });
let daemonLog = "";
const onLog = (d) => (daemonLog = (daemonLog + d).slice(-20_000));
daemon.stdout.setEncoding("utf8").on("data", onLog);
daemon.stderr.setEncoding("utf8").on("data", onLog);
const daemonExit = new Promise((resolve) => daemon.once("exit", (code, signal) => resolve(code ?? signal)));
let ready = false;
for (const deadline = Date.now() + (plan.daemonTimeoutMs ?? 90_000); Date.now() < deadline && !ready; await sleep(100)) {
  ready = daemonLog.includes("orchestrator ready") && existsSync(plan.socket);
  if (daemon.exitCode !== null || daemon.signalCode !== null) break;
}
write({ name: "daemon-started", ready, ms: Math.round(performance.now() - daemonStarted), logTail: daemonLog.slice(-3000), leftoverVmms: daemonVmms() });

if (ready) for (const c of plan.cases) write(await runCli(c));

registry?.kill("SIGKILL");
const stopAt = performance.now();
daemon.kill("SIGTERM");
const daemonCode = await Promise.race([daemonExit, sleep(10_000).then(() => "still running")]);
if (daemonCode === "still running") daemon.kill("SIGKILL");
write({ name: "daemon-stopped", ms: Math.round(performance.now() - stopAt), daemonExit: daemonCode, daemonGone: daemonCode !== "still running", logTail: daemonLog.slice(-3000), leftoverVmms: daemonVmms() });
// Pending timers (the races above) must not keep L1 up.
process.exit(0);
