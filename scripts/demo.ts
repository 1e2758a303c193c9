// The demo's main job until Linux guests land: boot a test guest in vmctl-vmm through
// its gRPC API, print its console output and how long it took to signal boot-done.
import { bootGuest } from "../tests/guests/harness.js";

const test = process.argv[2] ?? "hello";
console.log(`==> booting test guest "${test}" in vmctl-vmm (1 vCPU, 32 MiB) through the gRPC API`);
const result = await bootGuest({ test });
for (const line of result.console.trimEnd().split("\n")) console.log(`  console | ${line}`);
const exit = result.state.exit;
const bootDone = result.metrics.bootDoneUs === undefined ? "never signalled" : `${(result.metrics.bootDoneUs / 1000).toFixed(2)} ms after Start`;
const exits = Object.values(result.metrics.vmExits).reduce((a, b) => a + b, 0);
console.log(`==> VM exited: ${exit?.reason} (code ${exit?.code}); boot-done ${bootDone}; ${exits} VM exits handled`);
process.exitCode = exit?.reason === "guest-exit" && exit.code === 0 ? 0 : 1;
