// Reachability probes for network tests: a server that answers every TCP connection and
// UDP datagram with its own name and the address it saw the peer come from, and a client
// that says whether it got an answer. Both are plain Node scripts run inside a namespace,
// so what they see is what that namespace's routing and the host rules let through.
import type { NetNamespace } from "./netns.js";
import { waitForLine } from "./netns.js";

const SERVER = `
const net = require("node:net"), dgram = require("node:dgram");
const [name, tcp, udp] = process.argv.slice(1);
const ports = (s) => (s === "" ? [] : s.split(",").map(Number));
let pending = ports(tcp).length + ports(udp).length;
const ready = () => { if (--pending === 0) console.log("ready"); };
for (const port of ports(tcp)) {
  net.createServer((s) => { s.on("error", () => {}); s.end(name + " " + s.remoteAddress + "\\n"); }).listen(port, "0.0.0.0", ready);
}
for (const port of ports(udp)) {
  const u = dgram.createSocket("udp4");
  u.on("message", (m, r) => u.send(name + " " + r.address + "\\n", r.port, r.address));
  u.bind(port, "0.0.0.0", ready);
}
`;

const CLIENT = `
const net = require("node:net"), dgram = require("node:dgram");
const [proto, host, port, timeout, local] = process.argv.slice(1);
const done = (r) => { console.log(JSON.stringify(r)); process.exit(0); };
setTimeout(() => done({ ok: false, error: "timeout" }), Number(timeout));
if (proto === "tcp") {
  const s = net.connect({ host, port: Number(port), ...(local ? { localAddress: local } : {}) });
  let data = "";
  s.on("data", (d) => (data += d));
  s.on("end", () => done({ ok: true, reply: data.trim() }));
  s.on("error", (e) => done({ ok: false, error: e.code || e.message }));
} else {
  const u = dgram.createSocket("udp4");
  u.on("message", (m) => done({ ok: true, reply: m.toString().trim() }));
  u.on("error", (e) => done({ ok: false, error: e.code || e.message }));
  u.bind(local ? { address: local } : {}, () => u.send("probe", Number(port), host));
}
`;

export interface ProbeResult {
  readonly ok: boolean;
  /** The server's answer: "<its name> <the address it saw us come from>". */
  readonly reply?: string;
  readonly error?: string;
}

/** Starts a probe server in `ns` answering on the given TCP and UDP ports; resolves once it listens. */
export async function startProbeServer(ns: NetNamespace, name: string, ports: { tcp?: number[]; udp?: number[] }): Promise<void> {
  const child = ns.spawn(process.execPath, ["-e", SERVER, name, (ports.tcp ?? []).join(","), (ports.udp ?? []).join(",")]);
  await waitForLine(child, "ready");
}

/** One probe from `ns`: a TCP connection or a UDP datagram to host:port, answered within `timeoutMs` or not. */
export async function probe(
  ns: NetNamespace,
  protocol: "tcp" | "udp",
  host: string,
  port: number,
  options: { timeoutMs?: number; localAddress?: string } = {},
): Promise<ProbeResult> {
  const out = await ns.exec(process.execPath, ["-e", CLIENT, protocol, host, String(port), String(options.timeoutMs ?? 1500), options.localAddress ?? ""]);
  return JSON.parse(out) as ProbeResult;
}
