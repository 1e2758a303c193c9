// Run inside L1 (by nested.test.ts (linux-guest.suite.ts), through runInL1): boots a Linux kernel with an
// initramfs in the host's release `vmctl-vmm` against L1's /dev/kvm, through the VMM's
// gRPC API, and prints one JSON line with what happened: the end state, the console,
// the boot-done time, the VM-exit counters and L1's clock around the run (to check the
// guest's clock against). Plain JavaScript for the reason boot-test-guest.mjs gives.
//
//   node tests/nested/l1/boot-linux.mjs KERNEL INITRD VCPUS MEM_MIB BOOT_ARGS
import { performance } from "node:perf_hooks";
import { requireVmmBinary, VmmProcess } from "@vmctl/vmm-client";

const [kernel, initrd, vcpus = "1", memMib = "256", bootArgs = "console=ttyS0"] = process.argv.slice(2);
if (!kernel || !initrd) {
  console.error("usage: boot-linux.mjs KERNEL INITRD [VCPUS] [MEM_MIB] [BOOT_ARGS]");
  process.exit(2);
}

async function collect(source) {
  const chunks = [];
  for await (const chunk of source) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}

const vmm = await VmmProcess.spawn({ binary: requireVmmBinary(), readyTimeoutMs: 30_000 });
try {
  const { client } = vmm;
  await client.putMachineConfig({ vcpuCount: Number(vcpus), memSizeMib: Number(memMib) });
  await client.putBootSource({ kernelImagePath: kernel, initrdPath: initrd, bootArgs });
  const consoleText = collect(client.console({ replay: true }));
  const exited = client.waitExit();
  const clockBeforeMs = Date.now();
  const startAt = performance.now();
  await client.start();
  const state = await exited;
  const runMs = performance.now() - startAt;
  const clockAfterMs = Date.now();
  const metrics = await client.getMetrics();
  console.log(
    JSON.stringify({
      state,
      console: await consoleText,
      bootDoneUs: metrics.bootDoneUs,
      vmExits: metrics.vmExits,
      runMs: Math.round(runMs),
      clockBeforeMs,
      clockAfterMs,
    }),
  );
} finally {
  await vmm.close();
}
