// Run inside L1 (by nested.test.ts (host.suite.ts), through runInL1): boots one test guest
// (tests/guests) in the host's release `vmctl-vmm` against L1's /dev/kvm, through the
// VMM's gRPC API with the built @vmctl/vmm-client, and prints one JSON line with what
// happened. Plain JavaScript on purpose: under TCG, tsx compiling TypeScript at start
// costs several seconds more than importing the built dist.
//
//   node tests/nested/l1/boot-test-guest.mjs TEST [VCPUS]
import { existsSync, readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { requireVmmBinary, VmmProcess } from "@vmctl/vmm-client";

const [test = "hello", vcpus = "1"] = process.argv.slice(2);
const kernel = new URL("../../../target/guests/vmctl-test-guest.elf", import.meta.url).pathname;

async function collect(source) {
  const chunks = [];
  for await (const chunk of source) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}

const started = performance.now();
const vmm = await VmmProcess.spawn({ binary: requireVmmBinary(), readyTimeoutMs: 30_000 });
const spawnedMs = performance.now() - started;
try {
  const { client } = vmm;
  await client.putMachineConfig({ vcpuCount: Number(vcpus), memSizeMib: 32 });
  await client.putBootSource({ kernelImagePath: kernel, bootArgs: `console=ttyS0 vmctl.test=${test}` });
  const consoleText = collect(client.console({ replay: true }));
  const exited = client.waitExit();
  const startAt = performance.now();
  await client.start();
  const state = await exited;
  const runMs = performance.now() - startAt;
  const metrics = await client.getMetrics();
  console.log(
    JSON.stringify({
      test,
      state,
      console: await consoleText,
      bootDoneUs: metrics.bootDoneUs,
      vmmSpawnMs: Math.round(spawnedMs),
      runMs: Math.round(runMs),
      // Which KVM this was: L1's SVM KVM has kvm_amd loaded, the PVM host's has kvm_pvm.
      kvm: {
        device: existsSync("/dev/kvm"),
        kvmAmd: existsSync("/sys/module/kvm_amd"),
        npt: existsSync("/sys/module/kvm_amd/parameters/npt")
          ? readFileSync("/sys/module/kvm_amd/parameters/npt", "utf8").trim()
          : undefined,
        pvm: existsSync("/sys/module/kvm_pvm"),
      },
    }),
  );
} finally {
  await vmm.close();
}
