// kill -9 of the orchestrator in every phase a service can be in (issue 8): after the
// restart the service is in a true phase, an interrupted stop is finished (forced at its
// original deadline), an interrupted start is carried on, its exit is recorded and a
// waiter is answered; what was never acknowledged, or was being deleted, is gone.
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import test from "ava";
import type { ExecutionContext } from "ava";
import { Orchestrator } from "./engine.js";
import { silentLogger } from "../log/logger.js";
import { freePort, markedProcesses, tempDir } from "../testing/fixtures.js";
import { gatedPlugin } from "../testing/gated-target.js";
import { VmctlError } from "../errors.js";

const daemon = fileURLToPath(new URL("../testing/phase-daemon.ts", import.meta.url));
const repoRoot = fileURLToPath(new URL("../../../../", import.meta.url));

/** Runs `scenario` in a fresh orchestrator process and kill -9s it once every pattern in `until` has matched a line it printed. */
async function killWhen(stateDir: string, scenario: string, until: RegExp | RegExp[], extra: { hold?: string; port?: number } = {}): Promise<number> {
  const patterns = Array.isArray(until) ? until : [until];
  const child = spawn(process.execPath, ["--import", "tsx", daemon, stateDir, scenario, String(extra.port ?? 0)], {
    cwd: repoRoot,
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, ...(extra.hold === undefined ? {} : { VMCTL_TEST_HOLD: extra.hold }) },
  });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once("exit", (_code, signal) => resolve(signal)));
  const seen: string[] = [];
  let killedAt = 0;
  // Never hang the suite: a scenario that does not reach its point fails, saying what it printed.
  const giveUp = setTimeout(() => child.kill("SIGTERM"), 30_000);
  for await (const line of createInterface({ input: child.stdout })) {
    seen.push(line);
    if (killedAt === 0 && patterns.every((p) => seen.some((l) => p.test(l)))) {
      child.kill("SIGKILL");
      killedAt = Date.now();
    }
  }
  const signal = await exited;
  clearTimeout(giveUp);
  if (signal !== "SIGKILL") throw new Error(`the orchestrator ended (${String(signal)}) before ${until}; it printed: ${seen.join(" | ")}`);
  return killedAt;
}

async function reopen(t: ExecutionContext, stateDir: string): Promise<Orchestrator> {
  const engine = await Orchestrator.open({ stateDir, plugins: [gatedPlugin], log: silentLogger });
  t.teardown(async () => {
    await engine.close();
    // A test that failed half-way must not leave its workloads behind (a paused one
    // would sit stopped for ever): whatever still runs under its state dir is killed.
    for (const pid of markedProcesses(stateDir).keys()) {
      try {
        process.kill(-pid, "SIGKILL");
      } catch {
        // gone
      }
    }
  });
  t.true(engine.integrityCheck().ok);
  return engine;
}

/** Resolves once `get` says `phase`, or fails after `ms`. */
async function phaseBecomes(engine: Orchestrator, name: string, phase: string, ms = 15_000): Promise<void> {
  const until = Date.now() + ms;
  while (engine.get(name).phase !== phase) {
    if (Date.now() > until) throw new Error(`${name} stayed ${engine.get(name).phase}, never ${phase}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test("creating: a create never acknowledged is gone after the restart, with its directory", async (t) => {
  const stateDir = tempDir("vmctl-phase-");
  await killWhen(stateDir, "creating", /^HOLD prepare$/, { hold: "prepare" });
  const engine = await reopen(t, stateDir);
  t.deepEqual(engine.list(), []);
  t.is(engine.recovery.removed.length, 1);
  t.is(markedProcesses(stateDir).size, 0);
});

test("starting: the target had started it; after the restart it is followed and its exit recorded", async (t) => {
  const stateDir = tempDir("vmctl-phase-");
  await killWhen(stateDir, "starting", /^HOLD start$/, { hold: "start" });
  const engine = await reopen(t, stateDir);
  t.true(["running", "exited"].includes(engine.get("s").phase));
  const exit = await engine.wait("s");
  t.is(exit.code, 5);
  t.is(engine.get("s").phase, "exited");
});

test("waiting: the start carries on after the restart and completes once the dependency is ready", async (t) => {
  const stateDir = tempDir("vmctl-phase-");
  const port = await freePort();
  // Killed once the dependency runs (not ready: nothing listens on its port) and s waits for it.
  await killWhen(stateDir, "waiting", [/^PHASE s waiting$/, /^PHASE dep running$/], { port });
  const engine = await reopen(t, stateDir);
  t.deepEqual(engine.recovery.interruptedStarts, [engine.get("s").id]);
  t.true(["created", "waiting"].includes(engine.get("s").phase), engine.get("s").phase);
  // The dependency becomes ready; the start asked for before the crash completes.
  const server = createServer().listen(port, "127.0.0.1");
  t.teardown(() => server.close());
  await phaseBecomes(engine, "s", "running");
  await engine.stop("s", { timeoutMs: 2000 });
  await engine.stop("dep", { timeoutMs: 2000 });
  t.is((await engine.wait("s")).reason, "stopped");
});

test("running: still running after the restart, followed, its exit recorded and a waiter answered", async (t) => {
  const stateDir = tempDir("vmctl-phase-");
  await killWhen(stateDir, "running", /^PHASE s running$/);
  const engine = await reopen(t, stateDir);
  t.true(["running", "exited"].includes(engine.get("s").phase));
  t.is((await engine.wait("s")).code, 4);
});

test("paused: as the target finds it after the restart; resume thaws it and its exit is recorded", async (t) => {
  const stateDir = tempDir("vmctl-phase-");
  await killWhen(stateDir, "paused", /^PHASE s paused$/);
  const engine = await reopen(t, stateDir);
  // The kernel continues a stopped process group whose parent died (orphaned group), so
  // the fixture may honestly be running again; a freezer-based target stays paused.
  t.true(["paused", "running", "exited"].includes(engine.get("s").phase), engine.get("s").phase);
  if (engine.get("s").phase === "paused") await engine.resume("s");
  t.is((await engine.wait("s")).code, 6);
});

test("stopping: the interrupted stop is finished, forced at its original deadline, and waiters answered", async (t) => {
  const stateDir = tempDir("vmctl-phase-");
  const killedAt = await killWhen(stateDir, "stopping", /^PHASE s stopping$/);
  const engine = await reopen(t, stateDir);
  t.is(engine.get("s").phase, "stopping");
  const exit = await engine.wait("s");
  const forcedAfter = exit.at.getTime() - killedAt;
  t.is(exit.signal, "SIGKILL", JSON.stringify(exit));
  // 4 s of grace from when the stop began (just before the kill), not 4 s from the restart or never.
  t.true(forcedAfter > 2500 && forcedAfter < 9000, `forced ${forcedAfter} ms after the kill`);
  t.is(engine.get("s").phase, "exited");
  t.is(markedProcesses(stateDir).size, 0);
});

test("deleting: an interrupted delete is finished at start-up; nothing of the service is left", async (t) => {
  const stateDir = tempDir("vmctl-phase-");
  await killWhen(stateDir, "deleting", /^HOLD destroy$/, { hold: "destroy" });
  const engine = await reopen(t, stateDir);
  t.deepEqual(engine.list(), []);
  t.is(markedProcesses(stateDir).size, 0);
  const err = await t.throwsAsync(engine.wait("s"), { instanceOf: VmctlError });
  t.is(err?.code, "NOT_FOUND");
});
