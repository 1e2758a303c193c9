// Run inside a test's network namespace (network.test.ts): the orchestrator with the real
// host side and this target, a network, and a microVM service on it with a published
// port, from create to delete; what the host had at each step printed as one JSON line.
// `ip` and `nft` only read what is there. argv: stateDir resolvConf nft
import { execFileSync } from "node:child_process";
import { createHostNetwork, Orchestrator, silentLogger } from "@vmctl/core";
import registration from "../index.js";
import { GUEST_ELF } from "./context.js";

const [stateDir, resolvConf, nft] = process.argv.slice(2) as [string, string, string];
const engine = await Orchestrator.open({ stateDir, plugins: [registration], log: silentLogger, network: { host: createHostNetwork(), resolvConf } });

type Link = { ifname: string; master?: string; linkinfo?: { info_kind?: string } };
const taps = () => (JSON.parse(execFileSync("ip", ["-j", "-d", "link", "show"], { encoding: "utf8" }) || "[]") as Link[]).filter((l) => l.linkinfo?.info_kind === "tun");
const rules = () => execFileSync(nft, ["list", "ruleset"], { encoding: "utf8" });

const network = await engine.createNetwork({ name: "web", subnet: "10.67.0.0/24" });
const spec = { kernel: GUEST_ELF, bootArgs: "console=ttyS0 vmctl.test=ticker", memoryMib: 16 };
const created = await engine.create({ name: "vm", target: "microvm", spec, start: true, network: "web", ports: [{ hostPort: 8088, guestPort: 80, protocol: "tcp" }] });
const running = { record: engine.get(created.id), taps: taps(), rules: rules() };
await engine.delete(created.id, { force: true });
const deleted = { taps: taps(), rules: rules() };
await engine.deleteNetwork("web");
await engine.close();
process.stdout.write(`${JSON.stringify({ network, running, deleted })}\n`);
