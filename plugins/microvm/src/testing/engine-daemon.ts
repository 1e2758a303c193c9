// A throwaway orchestrator for the engine crash test: opens the state directory given as
// argv[2] with the microvm target and creates services forever, four at a time, printing
// "ACK <kind> <id> <name>" once each create has returned. The first `running` (argv[3])
// are VMs that keep running; then running VMs, guests that exit with 3, and services
// never started take turns. The test kills it with SIGKILL mid-way. Running VMs use the
// `idle` guest, which halts inside KVM and costs no CPU: twenty guests spinning on two
// cores would starve everything else the test suite runs.
import { Orchestrator, silentLogger } from "@vmctl/core";
import registration from "../index.js";
import { GUEST_ELF } from "./context.js";

const stateDir = process.argv[2];
const running = Number(process.argv[3] ?? "20");
if (stateDir === undefined) throw new Error("usage: engine-daemon STATE_DIR [RUNNING]");
const engine = await Orchestrator.open({ stateDir, plugins: [registration], log: silentLogger });
process.stdout.write("READY\n");

const guest = (test: string, ...words: string[]) => ({ kernel: GUEST_ELF, bootArgs: ["console=ttyS0", `vmctl.test=${test}`, ...words].join(" "), memoryMib: 16 });
const KINDS = {
  running: { spec: guest("idle"), start: true },
  exits: { spec: guest("exit_code", "vmctl.exit=3"), start: true },
  created: { spec: guest("hello"), start: false },
} as const;
const kinds = Object.keys(KINDS) as (keyof typeof KINDS)[];

let n = 0;
for (;;) {
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      const i = n++;
      const kind = i < running ? "running" : (kinds[i % kinds.length] as keyof typeof KINDS);
      const { spec, start } = KINDS[kind];
      const service = await engine.create({ name: `vm-${i}`, target: "microvm", spec, start, labels: { kind } });
      process.stdout.write(`ACK ${kind} ${service.id} ${service.name}\n`);
    }),
  );
}
