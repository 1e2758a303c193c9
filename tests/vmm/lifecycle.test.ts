// Interactive lifecycle through the API: console input, pause/resume, Ctrl-Alt-Del,
// forced shutdown, and the state stream.
import { setTimeout as sleep } from "node:timers/promises";
import test from "ava";
import { requireVmmBinary, VmmProcess, type VmState } from "@vmctl/vmm-client";
import { requireGuestElf } from "../guests/harness.js";

async function booted(testName: string): Promise<VmmProcess> {
  const vmm = await VmmProcess.spawn({ binary: requireVmmBinary() });
  await vmm.client.putMachineConfig({ vcpuCount: 1, memSizeMib: 32 });
  await vmm.client.putBootSource({ kernelImagePath: requireGuestElf(), bootArgs: `console=ttyS0 vmctl.test=${testName}` });
  return vmm;
}

/** Reads console output until `pattern` appears (bounded). */
async function until(output: AsyncIterator<Buffer>, pattern: RegExp, seen = { text: "" }): Promise<string> {
  const deadline = Date.now() + 10_000;
  while (!pattern.test(seen.text)) {
    if (Date.now() > deadline) throw new Error(`console never matched ${pattern}: ${seen.text.slice(-500)}`);
    const next = await output.next();
    if (next.done) throw new Error(`console ended before ${pattern}: ${seen.text.slice(-500)}`);
    seen.text += next.value.toString("utf8");
  }
  return seen.text;
}

test("console input reaches the guest's UART", async (t) => {
  const vmm = await booted("echo");
  try {
    const session = vmm.client.console({ replay: true });
    const output = session[Symbol.asyncIterator]();
    const seen = { text: "" };
    await vmm.client.start();
    await until(output, /ready/, seen);
    session.write("hello-vmctl\n");
    await until(output, /got=hello-vmctl/, seen);
    const final = await vmm.client.waitExit();
    t.is(final.exit?.code, 0);
  } finally {
    await vmm.close();
  }
});

test("pause stops the guest and resume continues it; the state stream shows each phase", async (t) => {
  const vmm = await booted("ticker");
  try {
    const phases: VmState["phase"][] = [];
    const watching = (async () => {
      for await (const s of vmm.client.watchState()) phases.push(s.phase);
    })();
    await vmm.client.start();
    t.is((await vmm.client.pause()).phase, "paused");
    const ticksWhilePaused = (await vmm.client.getMetrics()).consoleBytesOut;
    await sleep(300);
    t.is((await vmm.client.getMetrics()).consoleBytesOut, ticksWhilePaused, "console output while paused");
    t.is((await vmm.client.resume()).phase, "running");
    for (let i = 0; (await vmm.client.getMetrics()).consoleBytesOut === ticksWhilePaused; i++) {
      if (i > 200) t.fail("no output after resume");
      await sleep(10);
    }
    const final = await vmm.client.shutdown(0);
    t.is(final.phase, "exited");
    t.is(final.exit?.reason, "forced");
    await watching;
    t.deepEqual([...new Set(phases)], ["configuring", "running", "paused", "exited"]);
    t.is(phases.filter((p) => p === "paused").length, 1);
    t.is(phases.at(-1), "exited");
  } finally {
    await vmm.close();
  }
});

test("Ctrl-Alt-Del reaches the guest, which resets the machine", async (t) => {
  const vmm = await booted("ctrl_alt_del");
  try {
    const output = vmm.client.console({ replay: true })[Symbol.asyncIterator]();
    const exited = vmm.client.waitExit();
    await vmm.client.start();
    const seen = { text: "" };
    await until(output, /waiting for ctrl-alt-del/, seen);
    await vmm.client.sendCtrlAltDel();
    await until(output, /ctrl-alt-del received/, seen);
    const final = await exited;
    t.is(final.exit?.reason, "reset", JSON.stringify(final));
  } finally {
    await vmm.close();
  }
});

test("shutdown of a guest that ignores Ctrl-Alt-Del is forced after the grace period", async (t) => {
  const vmm = await booted("idle");
  try {
    await vmm.client.start();
    const final = await vmm.client.shutdown(200);
    t.is(final.phase, "exited");
    t.is(final.exit?.reason, "forced");
    // The VMM keeps serving after the VM exited: state and metrics stay readable.
    t.is((await vmm.client.getState()).phase, "exited");
    t.true((await vmm.client.getMetrics()).startToRunUs > 0);
  } finally {
    await vmm.close();
  }
});
