// For the restart-at-every-phase test: an orchestrator on argv[2] that drives one
// scenario (argv[3]) towards a phase and reports it: "PHASE <name> <phase>" for every
// change it sees, "HOLD <point>" from the gated target. The test kills it with SIGKILL
// at the moment it wants.
import { silentLogger } from "../log/logger.js";
import { Orchestrator } from "../orchestrator/engine.js";
import { waitForText } from "./fixtures.js";
import { gatedPlugin } from "./gated-target.js";

const [stateDir, scenario, portText] = process.argv.slice(2);
if (stateDir === undefined || scenario === undefined) throw new Error("usage: phase-daemon STATE_DIR SCENARIO [PORT]");
const engine = await Orchestrator.open({ stateDir, plugins: [gatedPlugin], log: silentLogger });
const watching = new AbortController();
void (async () => {
  for await (const event of engine.watch([], watching.signal)) process.stdout.write(`PHASE ${event.service.name} ${event.service.phase}\n`);
})();

const target = "gated";
/** Scenarios: each leaves the service named "s" in (or on its way through) one phase. */
const scenarios: Record<string, () => Promise<unknown>> = {
  creating: () => engine.create({ name: "s", target, spec: { args: ["sleep", "60"] } }),
  starting: () => engine.create({ name: "s", target, spec: { args: ["sh", "-c", "sleep 1; exit 5"] }, start: true }),
  waiting: async () => {
    const port = Number(portText);
    await engine.create({ name: "dep", target, spec: { args: ["sleep", "60"] }, readiness: { check: { kind: "tcp", port }, intervalMs: 100 } });
    return engine.create({ name: "s", target, spec: { args: ["sleep", "60"] }, dependsOn: ["dep"], start: true });
  },
  running: () => engine.create({ name: "s", target, spec: { args: ["sh", "-c", "sleep 1; exit 4"] }, start: true }),
  paused: async () => {
    await engine.create({ name: "s", target, spec: { args: ["sh", "-c", "sleep 1; exit 6"] }, start: true });
    return engine.pause("s");
  },
  stopping: async () => {
    // Ignores SIGTERM, so only the forced kill at the deadline ends it.
    await engine.create({ name: "s", target, spec: { args: ["sh", "-c", "trap '' TERM; echo trapped; while :; do sleep 1; done"] }, start: true });
    await waitForText(engine.logs("s", { follow: true }), "trapped");
    return engine.stop("s", { timeoutMs: 4000 });
  },
  deleting: async () => {
    await engine.create({ name: "s", target, spec: { args: ["sleep", "60"] }, start: true });
    return engine.delete("s", { force: true });
  },
};
const run = scenarios[scenario];
if (run === undefined) throw new Error(`unknown scenario ${scenario}`);
await run();
process.stdout.write("DONE\n");
