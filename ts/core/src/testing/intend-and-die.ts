// For the ledger test: records one service and one resource in the state directory
// argv[2], then dies by SIGKILL the instant `intend` returns.
import { StateStore } from "../state/state-store.js";

const stateDir = process.argv[2];
if (stateDir === undefined) throw new Error("usage: intend-and-die STATE_DIR");
const store = StateStore.open(stateDir);
store.reserve({ id: "s1", name: "one", target: "t", labels: {}, spec: {}, dependsOn: [] });
store.update("s1", { lifecycle: "active" });
store.ledger("s1").intend({ kind: "tap", key: "vmtap0", data: { mtu: 1500 } });
process.kill(process.pid, "SIGKILL");
