import test from "ava";
import { MemoryLedger } from "./memory-ledger.js";
import { recordedProcesses } from "./host-processes.js";

test("intend replaces by (kind, key), release removes, history keeps every version", (t) => {
  const ledger = new MemoryLedger([{ kind: "file", key: "/a" }]);
  ledger.intend({ kind: "process", key: "main", data: { marker: "m" } });
  ledger.intend({ kind: "process", key: "main", data: { marker: "m", pid: 4242, startTime: "99" } });
  t.deepEqual(ledger.list().map((r) => `${r.kind} ${r.key}`), ["file /a", "process main"]);
  ledger.release("process", "main");
  ledger.release("process", "never-there");
  t.deepEqual(ledger.list(), [{ kind: "file", key: "/a" }]);
  t.is(ledger.history().length, 3);
  t.deepEqual(recordedProcesses(ledger.history()), [{ pid: 4242, startTime: "99", resource: "process main" }]);
});

test("a resource that is not JSON, or has no string kind/key, is refused like the durable ledger refuses it", (t) => {
  const ledger = new MemoryLedger();
  t.throws(() => ledger.intend({ kind: "x", key: 1 as unknown as string }), { instanceOf: TypeError });
  t.deepEqual(ledger.list(), []);
});
