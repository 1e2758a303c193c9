// Run inside L1 by built-kernel.suite.ts: a microVM on a vmctl network, as a CI job's
// would use it. Two network namespaces made here: "vmhost", where vmctld runs (its uplink
// a veth), and "inet" behind it, playing the internet with a DNS stub and an HTTP server
// (net-peer.mjs). In vmhost: `vmctl network create` with the stub as its resolver, then
// `vmctl run -d -p 8080:80 --network …` of the default image whose workload prints its
// address and resolv.conf, resolves a name, fetches a file through NAT, then serves HTTP;
// the published port is fetched from vmhost (127.0.0.1) and from inet (the uplink
// address); then everything is removed and what is left on the host is listed. Each step
// is one JSON line on stdout and RESULTS_DIR/net-<name>.json.
//
//   node tests/nested/l1/linux-network.mjs PLAN.json      (plan: { resultsDir, stateDir, socket })
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { commandLineOf, liveVmms } from "./vmm-processes.mjs";

const [planPath] = process.argv.slice(2);
const plan = JSON.parse(readFileSync(planPath, "utf8"));
const here = (file) => new URL(file, import.meta.url).pathname;
const cli = here("../../../ts/cli/dist/bin.cjs");
const env = { ...process.env, VMCTL_STATE_DIR: plan.stateDir, VMCTL_SOCKET: plan.socket };
const UPLINK_HOST = "198.51.100.1";
const UPLINK_PEER = "198.51.100.2";
const NAME = "files.test";
const peerLog = join(plan.resultsDir, "net-peer.log");

function write(result) {
  const line = JSON.stringify(result);
  console.log(line);
  const out = join(plan.resultsDir, `net-${result.name}.json`);
  writeFileSync(`${out}.tmp`, line);
  renameSync(`${out}.tmp`, out);
}

/** Runs argv to its end; its exit code, output and time. */
function run(argv, options = {}) {
  const started = performance.now();
  const r = spawnSync(argv[0], argv.slice(1), { env, encoding: "utf8", timeout: options.timeoutMs ?? 60_000, ...(options.input ? { input: options.input } : {}) });
  return { code: r.status ?? r.signal ?? String(r.error), stdout: r.stdout ?? "", stderr: r.stderr ?? "", ms: Math.round(performance.now() - started) };
}

const inNs = (ns, argv) => ["ip", "netns", "exec", ns, ...argv];
const vmctl = (...args) => inNs("vmhost", [process.execPath, cli, ...args]);
const step = (name, argv, options) => {
  const result = { name, args: argv, ...run(argv, options) };
  write(result);
  return result;
};

// The kernel's netfilter, bridge, veth and tun modules (L1's kernel has them as modules;
// the chroot's modprobe loads them, with their dependencies).
const release = run(["uname", "-r"]).stdout.trim();
const modules = ["tun", "bridge", "veth", "br_netfilter", "nf_tables", "nf_nat", "nf_conntrack"];
for (const dir of ["kernel/net/netfilter", "kernel/net/ipv4/netfilter", "kernel/net/bridge/netfilter"]) {
  const path = `/lib/modules/${release}/${dir}`;
  if (!existsSync(path)) continue;
  for (const file of readdirSync(path)) if (/^(nft_|nf_reject|nf_conntrack_bridge)/.test(file)) modules.push(file.replace(/\.ko(\..*)?$/, ""));
}
write({ name: "modules", ...run(["modprobe", "-a", ...modules]) });

// The namespaces: vmhost ↔ inet over one veth; vmhost's default route goes to inet.
const setup = [
  "ip netns add vmhost",
  "ip netns add inet",
  "ip link add up0 type veth peer name up1",
  "ip link set up0 netns vmhost",
  "ip link set up1 netns inet",
  `ip -n vmhost addr add ${UPLINK_HOST}/24 dev up0`,
  `ip -n inet addr add ${UPLINK_PEER}/24 dev up1`,
  "ip -n vmhost link set lo up",
  "ip -n vmhost link set up0 up",
  "ip -n inet link set lo up",
  "ip -n inet link set up1 up",
  `ip -n vmhost route add default via ${UPLINK_PEER}`,
];
write({ name: "namespaces", ...run(["sh", "-ec", setup.join("\n")]) });

const peer = spawn("ip", inNs("inet", [process.execPath, here("./net-peer.mjs"), NAME, UPLINK_PEER, peerLog]).slice(1), { stdio: ["ignore", "pipe", "pipe"] });
let peerOut = "";
peer.stdout.setEncoding("utf8").on("data", (d) => (peerOut += d));
peer.stderr.setEncoding("utf8").on("data", (d) => (peerOut += d));
for (let i = 0; i < 100 && !(existsSync(peerLog) && readFileSync(peerLog, "utf8").includes('"ready"')); i++) await sleep(100);
write({ name: "peer-started", ready: existsSync(peerLog), output: peerOut });

// vmctld in vmhost, in the foreground of its own process (as `vmctl daemon` runs it).
const daemon = spawn("ip", vmctl("daemon").slice(1), { env, stdio: ["ignore", "pipe", "pipe"] });
let daemonLog = "";
daemon.stdout.setEncoding("utf8").on("data", (d) => (daemonLog = (daemonLog + d).slice(-20_000)));
daemon.stderr.setEncoding("utf8").on("data", (d) => (daemonLog = (daemonLog + d).slice(-20_000)));
let ready = false;
for (const deadline = Date.now() + 90_000; Date.now() < deadline && !ready && daemon.exitCode === null; await sleep(100)) {
  ready = daemonLog.includes("orchestrator ready") && existsSync(plan.socket);
}
write({ name: "daemon-started", ready, logTail: daemonLog.slice(-3000) });

const GUEST_SCRIPT = [
  "ip -4 addr show eth0 || ifconfig eth0",
  "ip route || route -n",
  "cat /etc/resolv.conf",
  `nslookup ${NAME} && echo resolved-ok`,
  `wget -q -O - http://${NAME}/hello.txt && echo fetched-ok`,
  "mkdir -p /www && echo hello-from-the-guest > /www/index.html",
  "echo serving",
  "exec httpd -f -p 80 -h /www",
].join("; ");

if (ready) {
  step("network-create", vmctl("network", "create", "testnet", "--dns", UPLINK_PEER));
  step("run", vmctl("run", "-d", "--name", "web", "--network", "testnet", "-p", "8080:80", "--target", "microvm", "default", "--", "sh", "-c", GUEST_SCRIPT), { timeoutMs: 180_000 });
  // Until the guest serves (or gives up), then its logs.
  let logs;
  for (const deadline = Date.now() + 180_000; Date.now() < deadline; await sleep(1000)) {
    logs = run(vmctl("logs", "web"));
    if (/serving/.test(logs.stdout) || /exited/.test(run(vmctl("inspect", "web")).stdout.match(/"phase":\s*"(\w+)"/)?.[1] ?? "")) break;
  }
  write({ name: "logs", ...logs });
  step("inspect", vmctl("inspect", "web"));
  step("ps", vmctl("ps", "-a"));
  step("get-from-host", inNs("vmhost", [process.execPath, here("./http-get.mjs"), "http://127.0.0.1:8080/", "10000"]));
  step("get-from-outside", inNs("inet", [process.execPath, here("./http-get.mjs"), `http://${UPLINK_HOST}:8080/`, "10000"]));
  step("rm", vmctl("rm", "-f", "web"), { timeoutMs: 120_000 });
  step("network-rm", vmctl("network", "rm", "testnet"));
}

// What is left in vmhost: links and nftables (nft by path: npm puts another "nft" on PATH).
step("links-after", ["ip", "-n", "vmhost", "-j", "link"]);
step("ruleset-after", inNs("vmhost", ["/usr/sbin/nft", "-j", "list", "ruleset"]));
write({ name: "vmms-after", leftoverVmms: liveVmms((pid) => commandLineOf(pid).includes(plan.stateDir)) });

daemon.kill("SIGTERM");
await Promise.race([new Promise((resolve) => daemon.once("exit", resolve)), sleep(10_000)]);
peer.kill("SIGTERM");
write({ name: "peer-log", entries: existsSync(peerLog) ? readFileSync(peerLog, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l)) : [] });
run(["sh", "-c", "ip netns del vmhost; ip netns del inet"]);
write({ name: "done" });
process.exit(0);
