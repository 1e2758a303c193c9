// Run inside L1 (or on a hardware-KVM host by `npm run test:linux`), by
// built-kernel.suite.ts: boots each case of a plan in turn, each in its own release
// `vmctl-vmm` driven through the VMM's gRPC API, and reports each as one JSON line on
// stdout and as RESULTS_DIR/<name>.json (written when the case ends, so the host-side
// test of that case can go on while later cases still run). Plain JavaScript for the
// reason boot-test-guest.mjs gives.
//
//   node tests/nested/l1/linux-cases.mjs PLAN.json
//
// A plan: { "resultsDir": DIR, "cases": [CASE...] }, a case:
//   name, kernel, initrd?, bootArgs, vcpus, memMib, drives?: [{ driveId, pathOnHost, isReadOnly?, isRootDevice? }],
//   waitFor?: a console text to wait for, then send?: console input and/or ctrlAltDel?: true,
//   timeoutMs: Start → exit (after it the VM is force-stopped and the case says timedOut),
//   graceMs?: Ctrl-Alt-Del → exit, instead of timeoutMs once Ctrl-Alt-Del is sent
// A result: the case's name, the configuration error (stage, code, message) if a Put or
// Start was refused, else the end state, the console (with when it streamed), the
// boot-done time, metrics; and the vmctl-vmm processes still alive after the VMM was closed.
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { requireVmmBinary, VmmProcess } from "@vmctl/vmm-client";
import { liveVmms, parentOf } from "./vmm-processes.mjs";

const [planPath] = process.argv.slice(2);
if (!planPath) {
  console.error("usage: linux-cases.mjs PLAN.json");
  process.exit(2);
}
const plan = JSON.parse(readFileSync(planPath, "utf8"));
const binary = requireVmmBinary();

/** vmctl-vmm processes this script started that still run (children of this process). */
const ourVmms = () => liveVmms((pid) => parentOf(pid) === process.pid);

function errorOf(stage, err) {
  return { stage, code: err?.code ?? "UNKNOWN", message: String(err?.message ?? err) };
}

async function runCase(c) {
  const result = { name: c.name };
  const spawnAt = performance.now();
  const vmm = await VmmProcess.spawn({ binary, readyTimeoutMs: 30_000 });
  result.vmmPid = vmm.pid;
  result.vmmSpawnMs = Math.round(performance.now() - spawnAt);
  try {
    const { client } = vmm;
    let stage = "putMachineConfig";
    try {
      await client.putMachineConfig({ vcpuCount: c.vcpus ?? 1, memSizeMib: c.memMib ?? 256 });
      stage = "putBootSource";
      await client.putBootSource({ kernelImagePath: c.kernel, bootArgs: c.bootArgs, ...(c.initrd ? { initrdPath: c.initrd } : {}) });
      for (const drive of c.drives ?? []) {
        stage = `putDrive ${drive.driveId}`;
        await client.putDrive(drive);
      }
    } catch (err) {
      result.configError = errorOf(stage, err);
      result.stateAfterError = await client.getState().catch((e) => ({ error: String(e) }));
      return result;
    }

    // The console, live: every chunk with when it came (ms since Start).
    let text = "";
    let startAt;
    const chunkTimes = [];
    const waiters = [];
    const session = client.console({ replay: true });
    const consoleDone = (async () => {
      for await (const chunk of session) {
        text += chunk.toString("utf8");
        chunkTimes.push(startAt === undefined ? 0 : performance.now() - startAt);
        for (const w of waiters) if (!w.done && text.includes(w.needle)) (w.done = true), w.resolve(performance.now());
      }
    })().catch((err) => {
      result.consoleError = String(err);
    });
    const seen = (needle) =>
      new Promise((resolve) => {
        if (text.includes(needle)) resolve(performance.now());
        else waiters.push({ needle, resolve, done: false });
      });

    const exited = client.waitExit();
    exited.catch(() => {}); // a refused Start closes the VMM with this still waiting
    result.clockBeforeMs = Date.now();
    startAt = performance.now();
    try {
      await client.start();
    } catch (err) {
      result.startError = errorOf("start", err);
      result.stateAfterError = await client.getState().catch((e) => ({ error: String(e) }));
      session.close();
      return result;
    }
    let timeout = sleep(c.timeoutMs ?? 30_000).then(() => "timeout");

    if (c.waitFor) {
      const at = await Promise.race([seen(c.waitFor), exited.then(() => "exited"), timeout]);
      if (typeof at === "number") {
        result.waitForMs = Math.round(at - startAt);
        if (c.send) session.write(c.send);
        if (c.ctrlAltDel) {
          result.ctrlAltDelState = (await client.sendCtrlAltDel()).phase;
          result.ctrlAltDelAtMs = Math.round(performance.now() - startAt);
          // From here the guest has graceMs to end, as a Shutdown's grace.
          if (c.graceMs !== undefined) timeout = sleep(c.graceMs).then(() => "timeout");
        }
      } else {
        result.waitForMissed = at;
      }
    }

    const end = await Promise.race([exited, timeout]);
    if (end === "timeout") {
      result.timedOut = true;
      result.state = await client.shutdown(0);
    } else {
      result.state = end;
    }
    result.runMs = Math.round(performance.now() - startAt);
    result.clockAfterMs = Date.now();
    if (result.ctrlAltDelAtMs !== undefined) result.ctrlAltDelToExitMs = result.runMs - result.ctrlAltDelAtMs;
    const metrics = await client.getMetrics();
    result.bootDoneUs = metrics.bootDoneUs;
    result.vmExits = metrics.vmExits;
    result.block = metrics.block;
    // The console stream ends with the VM; don't wait forever if it doesn't.
    await Promise.race([consoleDone, sleep(3000)]);
    session.close();
    result.console = text;
    result.consoleChunks = chunkTimes.length;
    result.chunksBeforeExit = chunkTimes.filter((t) => t > 0 && t < result.runMs).length;
    result.firstOutputMs = Math.round(chunkTimes.find((t) => t > 0) ?? 0);
    return result;
  } finally {
    await vmm.close();
    result.vmmExit = vmm.child.exitCode ?? vmm.child.signalCode;
    result.vmmStderrTail = vmm.stderr.replace(/\x1b\[[0-9;]*m/g, "").trim().split("\n").slice(-5).join("\n");
    result.leftoverVmms = ourVmms();
  }
}

let failed = 0;
for (const c of plan.cases) {
  let result;
  try {
    result = await runCase(c);
  } catch (err) {
    failed++;
    result = { name: c.name, harnessError: String(err?.stack ?? err), leftoverVmms: ourVmms() };
  }
  const line = JSON.stringify(result);
  console.log(line);
  const out = join(plan.resultsDir, `${c.name}.json`);
  writeFileSync(`${out}.tmp`, line);
  renameSync(`${out}.tmp`, out);
}
process.exit(failed === 0 ? 0 : 1);
