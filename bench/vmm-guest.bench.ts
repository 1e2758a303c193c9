// Benchmarks that boot test guests in vmctl-vmm through its API:
//  - start -> boot-done of the smallest guest ("hello"), as recorded by the VMM
//  - RSS of an idle VMM whose guest has booted ("idle" guest: boot-done, then HLT),
//    minus the guest memory it touched
// Peers measured in the same run: a `/bin/true` spawn (time) and an idle `sleep`
// process (RSS).
import { spawn } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { requireVmmBinary, VmmProcess } from "@vmctl/vmm-client";
import { bootGuest, requireGuestElf } from "../tests/guests/harness.js";
import { median, report } from "./lib/report.js";
import { processRssMib, spawnTrueMs } from "./lib/process.js";
import { rssExcludingGuestMib } from "./lib/smaps.js";

const RUNS = 11;
const MEM_MIB = 32;

async function idleRssMib(): Promise<{ totalMib: number; privateMib: number }> {
  const vmm = await VmmProcess.spawn({ binary: requireVmmBinary() });
  try {
    const { client } = vmm;
    await client.putMachineConfig({ vcpuCount: 1, memSizeMib: MEM_MIB });
    await client.putBootSource({ kernelImagePath: requireGuestElf(), bootArgs: "console=ttyS0 vmctl.test=idle" });
    await client.start();
    for (let i = 0; (await client.getMetrics()).bootDoneUs === undefined; i++) {
      if (i > 2000) throw new Error("idle guest never signalled boot-done");
      await sleep(5);
    }
    await sleep(200); // let start-up allocations settle
    const { totalMib, guestMib, privateMib } = rssExcludingGuestMib(vmm.pid, MEM_MIB * 1024 * 1024);
    return { totalMib: totalMib - guestMib, privateMib };
  } finally {
    await vmm.close();
  }
}

async function idleProcessRssMib(): Promise<number> {
  const child = spawn("sleep", ["60"], { stdio: "ignore" });
  try {
    await sleep(50);
    return processRssMib(child.pid as number);
  } finally {
    child.kill("SIGKILL");
  }
}

const bootDoneMs: number[] = [];
const plainRss: number[] = [];
const rss: number[] = [];
const privateRss: number[] = [];
const baseline: number[] = [];
for (let i = 0; i < RUNS; i++) {
  const { metrics, state } = await bootGuest({ test: "hello" });
  if (state.exit?.code !== 0 || metrics.bootDoneUs === undefined) {
    throw new Error(`hello guest failed: ${JSON.stringify(state)}`);
  }
  bootDoneMs.push(metrics.bootDoneUs / 1000);
  const idle = await idleRssMib();
  rss.push(idle.totalMib);
  privateRss.push(idle.privateMib);
  baseline.push(await spawnTrueMs());
  plainRss.push(await idleProcessRssMib());
}
report({
  name: "vmm_start_to_boot_done_smallest_guest",
  unit: "ms",
  value: median(bootDoneMs),
  baseline: median(baseline),
  baselineName: "spawn /bin/true",
  runs: RUNS,
  target: "<= 20 ms",
});
report({
  name: "vmm_idle_rss_beyond_guest_memory",
  unit: "MiB",
  value: median(rss),
  baseline: median(plainRss),
  baselineName: "RSS of an idle `sleep` process",
  runs: RUNS,
  target: "<= 5 MiB",
});
report({
  name: "vmm_idle_private_rss_beyond_guest_memory",
  unit: "MiB",
  value: median(privateRss),
  runs: RUNS,
});
