// A throwaway orchestrator for the crash test: opens the state directory given as argv[2]
// and creates services forever, four at a time, printing "SEND <i>" before each create
// (whose request id is "req-<i>") and "ACK <kind> <id> <name>" once it has returned.
// The test kills it with SIGKILL mid-way.
import { crashRequest, kindOf } from "./crash-requests.js";
import { openEngine } from "./fixtures.js";

const stateDir = process.argv[2];
if (stateDir === undefined) throw new Error("usage: crash-daemon STATE_DIR");
const engine = await openEngine(stateDir);
process.stdout.write("READY\n");

let n = 0;
for (;;) {
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      const i = n++;
      const kind = kindOf(i);
      process.stdout.write(`SEND ${i}\n`);
      const service = await engine.create(crashRequest(i));
      process.stdout.write(`ACK ${kind} ${service.id} ${service.name}\n`);
    }),
  );
}
