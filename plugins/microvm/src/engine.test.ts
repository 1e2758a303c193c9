// The microvm target under the real engine (@vmctl/core's Orchestrator, imported by this
// test only): a run-shorthand lifecycle, and kill -9 of the engine while it creates VMs.
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import test from "ava";
import { Orchestrator, silentLogger } from "@vmctl/core";
import registration from "./index.js";
import { killVmmsUnder, scratch, socketsUnder, vmmsUnder } from "./testing/context.js";

const s = scratch("vmctl-mvm-engine-");
test.after.always(() => s.cleanup());
const daemon = fileURLToPath(new URL("./testing/engine-daemon.ts", import.meta.url));
const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));

function open(stateDir: string): Promise<Orchestrator> {
  return Orchestrator.open({ stateDir, plugins: [registration], log: silentLogger });
}

async function text(chunks: AsyncIterable<{ data: Uint8Array }>): Promise<string> {
  let out = "";
  for await (const chunk of chunks) out += Buffer.from(chunk.data).toString();
  return out;
}

test("vmctl run shape through the engine: kernel + words → the guest's exit code and console", async (t) => {
  const stateDir = join(s.dir, "run");
  const engine = await open(stateDir);
  t.teardown(() => engine.close());
  t.deepEqual(
    engine.targets().find((x) => x.name === "microvm")?.status,
    "ready",
  );
  const service = await engine.create({
    target: "microvm",
    spec: { memoryMib: 16 },
    run: { image: s.guest, command: ["vmctl.test=exit_code", "vmctl.exit=7"] },
    start: true,
  });
  const exit = await engine.wait(service.id);
  t.is(exit.code, 7);
  t.is(exit.reason, "exited");
  t.regex(await text(engine.logs(service.id, { follow: true })), /vmctl-guest: exit_code start/);
  t.is(engine.get(service.id).phase, "exited");
  await engine.delete(service.id);
  t.deepEqual(readdirSync(join(stateDir, "services")), []);
  t.is(vmmsUnder(stateDir).size, 0);
});

interface Ack {
  readonly kind: string;
  readonly id: string;
  readonly name: string;
}

/** Runs the daemon until it has acknowledged `count` creates, then kills it with SIGKILL. */
async function runAndKill(stateDir: string, running: number, count: number): Promise<Ack[]> {
  const child = spawn(process.execPath, ["--import", "tsx", daemon, stateDir, String(running)], {
    cwd: repoRoot,
    stdio: ["ignore", "pipe", "inherit"],
  });
  const acks: Ack[] = [];
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once("exit", (_code, signal) => resolve(signal)));
  for await (const line of createInterface({ input: child.stdout })) {
    const [word, kind, id, name] = line.split(" ");
    if (word !== "ACK") continue;
    acks.push({ kind: kind as string, id: id as string, name: name as string });
    // Killed while more creates are in flight (four run at once).
    if (acks.length === count) child.kill("SIGKILL");
  }
  const signal = await exited;
  if (signal !== "SIGKILL") throw new Error(`the daemon ended by itself (${String(signal)}) before it was killed`);
  return acks;
}

test("kill -9 of the engine while it creates VMs: every acknowledged VM is there with its true phase, nothing leaks", async (t) => {
  t.timeout(300_000, "26 VMs booted and recovered on a loaded PVM host");
  const stateDir = join(s.dir, "crash");
  t.teardown(() => killVmmsUnder(stateDir));
  const acks = await runAndKill(stateDir, 20, 26);
  t.true(acks.length >= 26);

  const engine = await open(stateDir);
  t.teardown(() => engine.close());
  t.true(engine.integrityCheck().ok, engine.integrityCheck().messages.join("; "));
  const { adopted, exited, removed, sweptDirs, unavailable } = engine.recovery;
  t.log(`acknowledged ${acks.length}; recovery: adopted ${adopted.length}, exited ${exited.length}, removed ${removed.length}, swept ${sweptDirs.length}`);
  t.deepEqual(unavailable, []);

  for (const ack of acks) {
    const service = engine.get(ack.name);
    t.is(service.id, ack.id, `${ack.name} has its id`);
    if (ack.kind === "running") {
      t.is(service.phase, "running", `${ack.name} still runs`);
      t.true(service.pid !== undefined && vmmsUnder(`${join(stateDir, "services", ack.id)}/`).has(service.pid), `${ack.name}: its VMM runs`);
    } else if (ack.kind === "exits") {
      const exit = service.exit ?? (await engine.wait(ack.id));
      t.is(exit.code, 3, `${ack.name} exited with its own code`);
    } else {
      t.is(service.phase, "created", `${ack.name} was never started`);
    }
  }

  // Every VMM belongs to a stored, running service with that pid...
  const services = engine.list();
  const byId = new Map(services.map((x) => [x.id, x]));
  const servicesDir = join(stateDir, "services");
  const vmms = vmmsUnder(stateDir);
  for (const [pid, socket] of vmms) {
    const id = socket.slice(servicesDir.length + 1).split("/")[0] as string;
    const owner = byId.get(id);
    t.truthy(owner, `VMM ${pid} (${socket}) belongs to no stored service`);
    t.is(owner?.phase, "running", `VMM ${pid} runs for ${owner?.name}, which is ${owner?.phase}`);
    t.is(owner?.pid, pid);
  }
  // ...every running service has its VMM, and every socket is a running VMM's.
  const running = services.filter((x) => x.phase === "running");
  t.is(vmms.size, running.length);
  t.deepEqual(socketsUnder(stateDir).sort(), [...vmms.values()].sort());
  // No directory without a service, no service without its directory.
  t.deepEqual(readdirSync(servicesDir).sort(), services.map((x) => x.id).sort());

  // Idle guests ignore Ctrl-Alt-Del: stop them at once (all together), then delete everything.
  await Promise.all(running.map((x) => engine.stop(x.id, { timeoutMs: 0 })));
  for (const x of services) await engine.delete(x.id, { force: true });
  t.is(vmmsUnder(stateDir).size, 0);
  t.deepEqual(socketsUnder(stateDir), []);
  t.deepEqual(readdirSync(servicesDir), []);
  t.true(engine.integrityCheck().ok);
});
