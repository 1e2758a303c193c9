// kill -9 of the orchestrator while it creates services: nothing acknowledged is lost,
// nothing is leaked, the database is intact.
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import test from "ava";
import { crashRequest } from "../testing/crash-requests.js";
import { markedProcesses, openEngine, tempDir } from "../testing/fixtures.js";

const daemon = fileURLToPath(new URL("../testing/crash-daemon.ts", import.meta.url));
const repoRoot = fileURLToPath(new URL("../../../../", import.meta.url));

interface Ack {
  readonly kind: string;
  readonly id: string;
  readonly name: string;
}

/** Runs the daemon until it has acknowledged `count` creates, then kills it with SIGKILL. */
async function runAndKill(stateDir: string, count: number, sent: number[] = []): Promise<Ack[]> {
  const child = spawn(process.execPath, ["--import", "tsx", daemon, stateDir], {
    cwd: repoRoot,
    stdio: ["ignore", "pipe", "inherit"],
  });
  const acks: Ack[] = [];
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once("exit", (_code, signal) => resolve(signal)));
  for await (const line of createInterface({ input: child.stdout })) {
    const [word, kind, id, name] = line.split(" ");
    if (word === "SEND") sent.push(Number(kind));
    if (word !== "ACK") continue;
    acks.push({ kind: kind as string, id: id as string, name: name as string });
    // Killed while more creates are in flight (four run at once).
    if (acks.length === count) child.kill("SIGKILL");
  }
  const signal = await exited;
  if (signal !== "SIGKILL") throw new Error(`the daemon ended by itself (${String(signal)}) before it was killed`);
  return acks;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test("kill -9 while creating: every acknowledged service survives with its true phase, nothing leaks", async (t) => {
  const stateDir = tempDir("vmctl-crash-");
  const acks = await runAndKill(stateDir, 22);
  t.true(acks.length >= 22);

  // A new process recovers the same state directory.
  const engine = await openEngine(stateDir);
  t.teardown(() => engine.close());
  t.true(engine.integrityCheck().ok, engine.integrityCheck().messages.join("; "));
  const { adopted, exited, removed, sweptDirs } = engine.recovery;
  t.log(`acknowledged ${acks.length}; recovery: adopted ${adopted.length}, exited ${exited.length}, removed ${removed.length}, swept ${sweptDirs.length}`);

  for (const ack of acks) {
    const service = engine.get(ack.name);
    t.is(service.id, ack.id, `${ack.name} has its id`);
    if (ack.kind === "sleeper") {
      t.is(service.phase, "running", `${ack.name} still runs`);
      t.true(service.pid !== undefined && isAlive(service.pid), `${ack.name}: its pid runs`);
    } else if (ack.kind === "exits") {
      t.is(service.phase, "exited", `${ack.name} exited`);
      t.is(service.exit?.code, 3, `${ack.name} exited with its own code`);
    } else {
      t.is(service.phase, "created", `${ack.name} was never started`);
    }
  }

  // Every process the target made belongs to a stored, running service with that pid...
  const services = engine.list();
  const byId = new Map(services.map((s) => [s.id, s]));
  for (const [pid, id] of markedProcesses(stateDir)) {
    const owner = byId.get(id);
    t.truthy(owner, `process ${pid} belongs to no stored service (${id})`);
    t.is(owner?.phase, "running", `process ${pid} runs for ${owner?.name}, which is ${owner?.phase}`);
    t.is(owner?.pid, pid);
  }
  // ...and every running service has its process.
  const running = services.filter((s) => s.phase === "running");
  t.is(markedProcesses(stateDir).size, running.length);
  // No directory without a service, no service without its directory.
  t.deepEqual(readdirSync(join(stateDir, "services")).sort(), services.map((s) => s.id).sort());

  for (const s of services) await engine.delete(s.id, { force: true });
  t.is(markedProcesses(stateDir).size, 0);
  t.deepEqual(readdirSync(join(stateDir, "services")), []);
  t.true(engine.integrityCheck().ok);
});

test("kill -9 while creating, then every request sent again with its request id: one service per request, none twice", async (t) => {
  const stateDir = tempDir("vmctl-crash-");
  const sent: number[] = [];
  const acks = await runAndKill(stateDir, 14, sent);
  const engine = await openEngine(stateDir);
  t.teardown(() => engine.close());
  // The client's view: acknowledged, or lost in the crash (UNAVAILABLE) and retried.
  const ackedIds = new Map(acks.map((a) => [a.name, a.id]));
  const retried = await Promise.all(sent.map((i) => engine.create(crashRequest(i))));
  t.true(sent.length > acks.length, `${sent.length} sent, ${acks.length} acknowledged: some were cut by the kill`);
  for (const service of retried) {
    const acked = ackedIds.get(service.name);
    if (acked !== undefined) t.is(service.id, acked, `the retry of ${service.name} returns the acknowledged service`);
  }
  t.is(engine.list().length, sent.length, "exactly one service per request");
  t.is(new Set(retried.map((s) => s.id)).size, sent.length);
  for (const s of engine.list()) await engine.delete(s.id, { force: true });
  t.is(markedProcesses(stateDir).size, 0);
});
