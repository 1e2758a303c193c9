import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import test from "ava";
import { VmctlError } from "../errors.js";
import { tempDir } from "../testing/fixtures.js";
import { StateStore } from "./state-store.js";

const script = fileURLToPath(new URL("../testing/intend-and-die.ts", import.meta.url));
const repoRoot = fileURLToPath(new URL("../../../../", import.meta.url));

test("intend is on disk when it returns: a kill -9 right after it loses nothing", (t) => {
  const stateDir = tempDir();
  const result = spawnSync(process.execPath, ["--import", "tsx", script, stateDir], { cwd: repoRoot, encoding: "utf8" });
  t.is(result.signal, "SIGKILL", result.stderr);
  const store = StateStore.open(stateDir);
  t.teardown(() => store.close());
  t.deepEqual(store.resources("s1"), [{ kind: "tap", key: "vmtap0", data: { mtu: 1500 } }]);
  t.is(store.get("s1")?.lifecycle, "active");
  t.true(store.integrityCheck().ok);
});

test("intend updates a resource's data, release removes it, and a service's ledger goes with it", (t) => {
  const store = StateStore.open(tempDir());
  t.teardown(() => store.close());
  store.reserve({ id: "a", name: "a", target: "t", labels: {}, spec: {}, dependsOn: [] });
  store.reserve({ id: "b", name: "b", target: "t", labels: {}, spec: {}, dependsOn: [] });
  const ledger = store.ledger("a");
  ledger.intend({ kind: "process", key: "main" });
  ledger.intend({ kind: "file", key: "/x" });
  ledger.intend({ kind: "process", key: "main", data: { pid: 42 } });
  store.ledger("b").intend({ kind: "file", key: "/y" });
  t.deepEqual(ledger.list(), [
    { kind: "process", key: "main", data: { pid: 42 } },
    { kind: "file", key: "/x" },
  ]);
  ledger.release("file", "/x");
  ledger.release("file", "/never-there");
  t.deepEqual(ledger.list(), [{ kind: "process", key: "main", data: { pid: 42 } }]);
  store.remove("a");
  t.deepEqual(store.resources("a"), []);
  t.deepEqual(store.resources("b"), [{ kind: "file", key: "/y" }]);
  const err = t.throws(() => store.ledger("ghost").intend({ kind: "file", key: "/z" }), { instanceOf: VmctlError });
  t.is(err?.code, "NOT_FOUND");
});
