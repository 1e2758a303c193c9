// A throwaway orchestrator for the crash test: opens the state directory given as argv[2]
// and creates services forever, four at a time, printing "ACK <kind> <id> <name>" once
// each create has returned. The test kills it with SIGKILL mid-way.
import { openEngine } from "./fixtures.js";

const stateDir = process.argv[2];
if (stateDir === undefined) throw new Error("usage: crash-daemon STATE_DIR");
const engine = await openEngine(stateDir);
process.stdout.write("READY\n");

const KINDS = {
  sleeper: { spec: { args: ["sleep", "300"] }, start: true },
  exits: { spec: { args: ["sh", "-c", "exit 3"] }, start: true },
  idle: { spec: { args: ["true"] }, start: false },
} as const;
const kinds = Object.keys(KINDS) as (keyof typeof KINDS)[];

let n = 0;
for (;;) {
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      const i = n++;
      const kind = kinds[i % kinds.length] as keyof typeof KINDS;
      const { spec, start } = KINDS[kind];
      const service = await engine.create({ name: `svc-${i}`, target: "process", spec, start, labels: { kind } });
      process.stdout.write(`ACK ${kind} ${service.id} ${service.name}\n`);
    }),
  );
}
