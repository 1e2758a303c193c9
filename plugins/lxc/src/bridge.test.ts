// lxc containers on the orchestrator's networks, end to end: a real vmctld (this plugin's
// built dist, real LXC) running inside a network namespace this file makes, with an
// "internet" namespace behind its uplink — never the host's own interfaces. The engine
// leases the address and makes the bridge and rules (netlink, nftables, in-process); LXC
// makes the veth under the engine's name. Checked from the namespaces with `ip -j`, `nft`
// and busybox: the address from the lease, the gateway and NAT egress, a published port
// answering on the host, deny-all stopping egress, and delete leaving no veth or rule.
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import test from "ava";
import { connect, VmctlError, type VmctlClient } from "@vmctl/client";
import { builtPluginPath, processesMentioning } from "@vmctl/plugin-conformance";
import { NetNamespace, systemTool, vethPair } from "../../../ts/core/src/network/testing/netns.js";
import { startProbeServer } from "../../../ts/core/src/network/testing/probes.js";
import { busyboxRootfs, lxcLs, requireLxc } from "./testing/context.js";

const pluginPath = builtPluginPath(new URL("..", import.meta.url));
const VMCTLD = fileURLToPath(new URL("../../../ts/server/dist/bin.js", import.meta.url));
if (!existsSync(VMCTLD)) throw new Error(`${VMCTLD} is missing: npm run build -w @vmctl/server`);
requireLxc();
const BUSYBOX = systemTool("busybox", "busybox-static");

// The "host" (where vmctld runs) and its uplink to the "internet".
const UPLINK = { host: "203.0.113.1", internet: "203.0.113.2" };
const SUBNET = "10.77.0.0/24";
const RESOLVER = "198.51.100.53";

const dir = mkdtempSync(join(tmpdir(), "vmctl-lxc-net-"));
const stateDir = join(dir, "state");
const socket = join(dir, "vmctld.sock");
const rootfs = busyboxRootfs(dir);
// What the container's web server serves.
mkdirSync(join(rootfs, "www"));
writeFileSync(join(rootfs, "www", "index.html"), "hello from lxc\n");

let host: NetNamespace;
let internet: NetNamespace;
let daemon: ChildProcess;
let client: VmctlClient;
const logFile = join(dir, "vmctld.log");

test.before(async () => {
  host = await NetNamespace.create("lxc-host");
  internet = await NetNamespace.create("lxc-inet");
  await vethPair(host, "uplink0", internet, "up0");
  await host.ip("addr", "add", `${UPLINK.host}/24`, "dev", "uplink0");
  await host.ip("route", "add", "default", "via", UPLINK.internet);
  await internet.ip("addr", "add", `${UPLINK.internet}/24`, "dev", "up0");
  // Answers every TCP connection on port 80 with "internet <the address it saw>": NAT shows.
  await startProbeServer(internet, "internet", { tcp: [80] });

  await startDaemon();
  await client.createNetwork({ name: "lxcnet", subnet: SUBNET, dns: [RESOLVER] });
});

test.after.always(async () => {
  client?.close();
  if (daemon && daemon.exitCode === null) {
    daemon.kill("SIGKILL");
    await new Promise((resolve) => daemon.once("exit", resolve));
  }
  // Containers and shims outlive vmctld by design: stop what this file started.
  for (const name of lxcLsSafe()) spawnQuiet("lxc-stop", ["-P", join(stateDir, "targets", "lxc", "containers"), "-n", name, "-k"]);
  for (const pid of processesMentioning(dir)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone
    }
  }
  await host?.delete();
  await internet?.delete();
  rmSync(dir, { recursive: true, force: true });
});

/** vmctld with this plugin alone, in the host namespace; resolves once it answers. */
async function startDaemon(): Promise<void> {
  const fd = openSync(logFile, "a");
  // Not `ip netns exec`: it mounts a fresh /sys, hiding the cgroup hierarchies LXC puts
  // containers in. So: the namespace's network (nsenter), a mount namespace of its own
  // whose /sys is the namespace's sysfs (LXC reads /sys/class/net/<bridge>/bridge to tell
  // a Linux bridge from Open vSwitch) with the host's cgroup mounts moved back onto it.
  // Every step execs: the child is vmctld, and what it starts (shims, LXC) runs in there.
  const inNamespace = 'set -e; d=$(mktemp -d); mount --rbind /sys/fs/cgroup "$d"; mount -t sysfs sysfs /sys; mount --move "$d" /sys/fs/cgroup; rmdir "$d"; exec "$@"';
  const child = spawn(
    systemTool("nsenter", "util-linux"),
    [
      `--net=/run/netns/${host.name}`,
      "--",
      systemTool("unshare", "util-linux"),
      "--mount",
      "--propagation",
      "private",
      "--",
      "/bin/sh",
      "-c",
      inNamespace,
      "vmctld-in-namespace",
      process.execPath,
      VMCTLD,
      ...["--state-dir", stateDir, "--socket", socket, "--log-level", "debug", "--no-builtins", "--plugin", pluginPath],
    ],
    { stdio: ["ignore", fd, fd] },
  );
  closeSync(fd);
  daemon = child;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`vmctld exited during start-up: ${log()}`);
    const c = connect(socket);
    try {
      await c.ping(1000);
      client = c;
      return;
    } catch {
      c.close();
    }
    if (Date.now() > deadline) throw new Error(`vmctld did not answer within 30 s: ${log()}`);
    await sleep(50);
  }
}

function log(): string {
  return existsSync(logFile) ? readFileSync(logFile, "utf8").trim().split("\n").slice(-5).join(" | ") : "";
}

function lxcLsSafe(): string[] {
  try {
    return lxcLs(join(stateDir, "targets", "lxc", "containers"));
  } catch {
    return [];
  }
}

function spawnQuiet(file: string, args: string[]): void {
  spawn(file, args, { stdio: "ignore" }).on("error", () => undefined);
}

interface Link {
  readonly ifname: string;
  readonly master?: string;
  readonly mtu?: number;
  readonly linkinfo?: { readonly info_kind?: string };
}

const links = () => host.ipJson<Link[]>("-d", "link", "show");
const ruleset = () => host.exec(systemTool("nft", "nftables"), ["list", "ruleset"]);

async function sh(ref: string, script: string): Promise<{ code: number | null; out: string }> {
  const r = await client.execToEnd(ref, ["sh", "-c", script]);
  return { code: r.code, out: `${Buffer.from(r.stdout).toString()}${Buffer.from(r.stderr).toString()}` };
}

/** An HTTP/1.0 GET from a namespace (busybox nc), the whole response. */
function httpGet(ns: NetNamespace, address: string, port: number): Promise<string> {
  return ns.exec("/bin/sh", ["-c", `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | "$0" nc -w 3 "$1" "$2"`, BUSYBOX, address, String(port)]);
}

/** Whether the container reaches the internet's TCP 80, and what the server saw it come from. */
async function egress(ref: string): Promise<{ code: number | null; out: string }> {
  return sh(ref, `nc -w 2 ${UPLINK.internet} 80 </dev/null`);
}

test.serial("a container on a named network: the leased address on a veth under the engine's name, gateway, NAT egress, DNS, a published port; delete leaves no veth or rule", async (t) => {
  const network = await client.getNetwork("lxcnet");
  const s = await client.create({
    name: "web",
    target: "lxc",
    spec: { rootfs, args: ["sh", "-c", "echo up; exec httpd -f -p 80 -h /www"] },
    network: "lxcnet",
    ports: [{ hostPort: 8080, guestPort: 80, protocol: "tcp" }],
    start: true,
  });
  t.is(s.phase, "running", log());
  const attachment = s.network!;
  t.is(attachment.address, "10.77.0.2", "the first address of the subnet's lease");
  t.deepEqual(s.addresses, ["10.77.0.2"], "state().addresses reports the leased address");
  t.regex(attachment.hostDevice, /^vmtap-/);

  const veth = (await links()).find((l) => l.ifname === attachment.hostDevice);
  t.is(veth?.linkinfo?.info_kind, "veth", "LXC made the host side under the engine's name");
  t.is(veth?.master, network.bridge, "on the network's bridge");

  const eth0 = await sh("web", "ip -4 addr show eth0; ip link show eth0; ip route");
  t.is(eth0.code, 0, eth0.out);
  t.regex(eth0.out, /inet 10\.77\.0\.2\/24 brd 10\.77\.0\.255/);
  t.regex(eth0.out, new RegExp(`link/ether ${attachment.mac}`));
  t.regex(eth0.out, /default via 10\.77\.0\.1/);
  t.is((await sh("web", "ping -c 1 -W 2 10.77.0.1")).code, 0, "reaches the gateway");
  const resolv = await sh("web", "cat /etc/resolv.conf");
  t.regex(resolv.out, new RegExp(`^nameserver ${RESOLVER.replace(/\./g, "\\.")}$`, "m"), "the network's resolvers");
  t.false(readFileSync(join(rootfs, "etc", "resolv.conf"), "utf8").includes(RESOLVER), "mounted over, never written into the shared rootfs");

  const out = await egress("web");
  t.is(out.code, 0, out.out);
  t.is(out.out.trim(), `internet ${UPLINK.host}`, "egress is NATed to the host's uplink address");

  // From the host itself, to its own uplink address: the published port answers.
  t.regex(await httpGet(host, UPLINK.host, 8080), /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nhello from lxc\n$/);
  // And from outside, through the uplink.
  t.regex(await httpGet(internet, UPLINK.host, 8080), /\r\n\r\nhello from lxc\n$/);
  t.true((await ruleset()).includes("10.77.0.2"));

  await client.delete("web", { force: true });
  t.false((await links()).some((l) => l.ifname === attachment.hostDevice), "the veth went");
  t.false((await ruleset()).includes("10.77.0.2"), "and its rules");
  t.deepEqual(lxcLsSafe(), [], "and the container");
  t.deepEqual((await client.getNetwork("lxcnet")).services, []);
});

test.serial("deny-all stops egress (its own network still answers); the next service gets the freed address", async (t) => {
  const s = await client.create({
    name: "closed",
    target: "lxc",
    spec: { rootfs, args: ["sh", "-c", "echo up; exec sleep 300"] },
    network: "lxcnet",
    networkPolicy: { mode: "deny-all" },
    start: true,
  });
  t.is(s.network?.address, "10.77.0.2", "the address the deleted service held");
  t.is((await sh("closed", "ping -c 1 -W 2 10.77.0.1")).code, 0, "the gateway on its own network");
  const out = await egress("closed");
  t.not(out.out.trim(), `internet ${UPLINK.host}`, `egress must be stopped: ${out.out}`);
  t.not(out.code, 0);

  // Two on one network reach each other.
  const other = await client.create({ name: "open", target: "lxc", spec: { rootfs, args: ["sh", "-c", "exec sleep 300"] }, network: "lxcnet", start: true });
  t.is(other.network?.address, "10.77.0.3");
  t.is((await sh("open", "ping -c 1 -W 2 10.77.0.2")).code, 0);
  t.is((await egress("open")).out.trim(), `internet ${UPLINK.host}`, "allow-all (the network's policy) egresses");

  const devices = [s.network!.hostDevice, other.network!.hostDevice];
  await client.delete("closed", { force: true });
  await client.delete("open", { force: true });
  const left = (await links()).map((l) => l.ifname);
  t.false(devices.some((d) => left.includes(d)), `no veth left: ${left.join(", ")}`);
  const rules = await ruleset();
  t.false(rules.includes("10.77.0.2") || rules.includes("10.77.0.3"), `no service rule left:\n${rules}`);
});

test.serial("without a network the container has an empty network namespace; the old spec.network is refused naming it", async (t) => {
  const s = await client.create({ name: "alone", target: "lxc", spec: { rootfs, args: ["sh", "-c", "exec sleep 300"] }, start: true });
  t.deepEqual(s.addresses, []);
  const ip = await sh("alone", "ip -o link");
  t.deepEqual(
    ip.out.trim().split("\n").map((l) => l.split(":")[1]?.trim()),
    ["lo"],
    ip.out,
  );
  await client.delete("alone", { force: true });

  const err = await t.throwsAsync(client.create({ name: "old", target: "lxc", spec: { rootfs, args: ["true"], network: "bridge" } }), { instanceOf: VmctlError });
  t.is(err?.code, "INVALID_ARGUMENT");
  t.regex(err?.details.field ?? "", /network$/);
  t.regex(err?.message ?? "", /--network/);
});

test.serial("a template container on a network gets the resolvers over its own rootfs's /etc/resolv.conf", async (t) => {
  const s = await client.create({ name: "tpl", target: "lxc", spec: { template: "busybox", args: ["sh", "-c", "exec sleep 300"] }, network: "lxcnet", start: true });
  t.deepEqual(s.addresses, [s.network!.address]);
  const resolv = await sh("tpl", "cat /etc/resolv.conf; ip -4 addr show eth0");
  t.regex(resolv.out, new RegExp(`^nameserver ${RESOLVER.replace(/\./g, "\\.")}$`, "m"), resolv.out);
  t.regex(resolv.out, new RegExp(`inet ${s.network!.address.replace(/\./g, "\\.")}/24`));
  await client.delete("tpl", { force: true });
  t.false((await links()).some((l) => l.ifname === s.network!.hostDevice));
});

test.serial("after vmctld is killed (-9) and started again, the running container keeps its address and network; delete then cleans up", async (t) => {
  const s = await client.create({ name: "survivor", target: "lxc", spec: { rootfs, args: ["sh", "-c", "exec sleep 300"] }, network: "lxcnet", start: true });
  const device = s.network!.hostDevice;
  client.close();
  daemon.kill("SIGKILL");
  await new Promise((resolve) => daemon.once("exit", resolve));
  await startDaemon();
  const again = await client.get("survivor");
  t.is(again.phase, "running");
  t.deepEqual(again.addresses, [s.network!.address], "adopted with the leased address");
  t.true((await links()).some((l) => l.ifname === device), "reconciliation kept the live container's veth");
  t.is((await egress("survivor")).out.trim(), `internet ${UPLINK.host}`, "and its rules");
  await client.delete("survivor", { force: true });
  t.false((await links()).some((l) => l.ifname === device));
  t.false((await ruleset()).includes(s.network!.address));
});
