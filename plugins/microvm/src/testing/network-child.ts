// Run inside a test's network namespace (network.test.ts): the real host side makes a
// network (bridge, NAT) there, and one microVM service on it goes through its life —
// prepare (the TAP), start (the NIC on it), stop, destroy — with what could be seen at
// each step printed as one JSON line, with an orchestrator restart (adopt) while it
// runs. `ip` only reads what is there.
// argv: dir guestElf
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { createHostNetwork } from "@vmctl/core";
import type { NetworkAttachment, OwnedResource, ServiceNetwork } from "@vmctl/core/contract";
import { testTargetContext } from "@vmctl/plugin-conformance";
import { VmmClient } from "@vmctl/vmm-client";
import { initMicrovm } from "../index.js";
import { MemoryLogger } from "./context.js";

const [dir, guest] = process.argv.slice(2) as [string, string];
const host = createHostNetwork();
const network = { name: "mvm", subnet: "10.66.0.0/24", gateway: "10.66.0.1", bridge: "vmbr-mvmtest0", dns: ["10.66.0.1", "9.9.9.9"], policy: { mode: "allow-all" as const } };
await host.ensureNetwork(network);

const log = new MemoryLogger();
function newFactory() {
  const factory = initMicrovm({ stateDir: join(dir, "state"), options: {}, log });
  if (!factory) throw new Error(`microvm target unavailable: ${JSON.stringify(log.lines)}`);
  return factory;
}
const factory = newFactory();

/** Every ledger change and host call, in order: the TAP must be in the ledger before it is made. */
const events: string[] = [];

function contextFor(serviceId: string, attachment: NetworkAttachment) {
  const base = testTargetContext(dir, serviceId, { owner: "microvm-net-test" });
  const ledger = base.resources;
  const resources = {
    intend: (r: OwnedResource) => (events.push(`intend ${r.kind} ${r.key}`), ledger.intend(r)),
    release: (kind: string, key: string) => (events.push(`release ${kind} ${key}`), ledger.release(kind, key)),
    list: () => ledger.list(),
  };
  const net: ServiceNetwork = {
    attachment,
    createTap: async () => (events.push(`createTap ${attachment.hostDevice}`), host.createTap(attachment)),
    deleteDevice: async () => (events.push(`deleteDevice ${attachment.hostDevice}`), host.deleteDevice(attachment.hostDevice)),
  };
  return { ...base, resources, network: net };
}

type Link = { ifname: string; master?: string; flags?: string[]; mtu?: number; linkinfo?: { info_kind?: string } };
function link(name: string): Link | undefined {
  const links = JSON.parse(execFileSync("ip", ["-j", "-d", "link", "show"], { encoding: "utf8" }) || "[]") as Link[];
  return links.find((l) => l.ifname === name);
}

/** The TAP interfaces a process holds open (tun fds' `iff:` in fdinfo). */
function tapsHeldBy(pid: number): string[] {
  const out: string[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`) !== "/dev/net/tun") continue;
      const iff = /^iff:\s*(\S+)/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, "utf8"));
      if (iff) out.push(iff[1] as string);
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

const attachment: NetworkAttachment = { network: "mvm", bridge: network.bridge, address: "10.66.0.7", prefixLength: 24, gateway: "10.66.0.1", dns: network.dns, mac: "02:00:0a:42:00:07", hostDevice: "vmtap-mvmtest7", mtu: 1500 };
const ctx = contextFor("net1", attachment);
const spec = factory.validate({ kernel: guest, bootArgs: "console=ttyS0 vmctl.test=ticker", memoryMib: 16 });
const first = await factory.create("net1", spec, ctx);
const c = first;
await c.prepare();
const afterPrepare = { events: [...events], tap: link(attachment.hostDevice) ?? null, state: await c.state() };
// A TAP gone between prepare and start (a host reboot) is made again by start.
execFileSync("ip", ["link", "delete", attachment.hostDevice]);
await c.start();
const running = await c.state();
const pid = running.pid as number;
const client = new VmmClient(c.socketPath);
const nics = await client.listNetworkInterfaces();
client.close();
const vmJson = JSON.parse(readFileSync(join(ctx.serviceDir, "vm.json"), "utf8")) as Record<string, unknown>;
const whileRunning = { state: running, tap: link(attachment.hostDevice) ?? null, held: tapsHeldBy(pid), nics, vmJson };

// An orchestrator restart: the old factory closed (the VM runs on), a new one adopts it.
await factory.close();
events.length = 0;
const factory2 = newFactory();
const adopted = await factory2.adopt({ id: "net1", target: "microvm", spec, data: first.record(), resources: ctx.resources.list() }, ctx);
if (adopted === undefined) throw new Error("adopt found nothing");
const afterAdopt = { events: [...events], state: await adopted.state(), held: tapsHeldBy(pid) };

await adopted.stop({ timeoutMs: 2000 });
const stopped = await adopted.state();
events.length = 0;
await adopted.destroy();
const afterDestroy = { events: [...events], tap: link(attachment.hostDevice) ?? null, ledger: ctx.resources.list() };

// A TAP that cannot be made (its bridge is not there): prepare fails, destroy leaves nothing.
const broken: NetworkAttachment = { ...attachment, bridge: "vmbr-missing0", address: "10.66.0.8", hostDevice: "vmtap-mvmtest8" };
const ctx2 = contextFor("net2", broken);
const c2 = await factory2.create("net2", spec, ctx2);
const failure = await c2.prepare().then(
  () => null,
  (err: Error & { code?: string }) => ({ code: err.code ?? null, message: err.message }),
);
await c2.destroy();
const afterFailure = { failure, tap: link(broken.hostDevice) ?? null, ledger: ctx2.resources.list() };

await factory2.close();
await host.removeNetwork(network);
process.stdout.write(`${JSON.stringify({ afterPrepare, whileRunning, afterAdopt, stopped, afterDestroy, afterFailure })}\n`);
