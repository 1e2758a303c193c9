import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { VmctlError } from "@vmctl/core/contract";
import { requireVmmBinary } from "./binary.js";
import { VmmClient } from "./client.js";
import { readVmmLimits } from "./limits.js";
import { VmmProcess } from "./process.js";

test("a console session closed before anyone reads it does not crash the process", async (t) => {
  const vmm = await VmmProcess.spawn({ binary: requireVmmBinary() });
  try {
    const session = vmm.client.console({ replay: true });
    session.close();
    // Give grpc-js time to deliver the CANCELLED status to the stream.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const chunks: Buffer[] = [];
    for await (const chunk of session) chunks.push(chunk);
    t.deepEqual(chunks, []);
    t.is((await vmm.client.getState()).phase, "configuring");
  } finally {
    await vmm.close();
  }
});

test("GetInfo publishes the limits `vmctl-vmm --limits` prints, typed", async (t) => {
  const vmm = await VmmProcess.spawn({ binary: requireVmmBinary() });
  try {
    const { limits } = await vmm.client.getInfo();
    t.deepEqual(limits, readVmmLimits(requireVmmBinary()));
    t.true(limits?.driveIdPattern.test("a".repeat(limits.driveIdMaxLen)));
    t.false(limits?.driveIdPattern.test("a".repeat((limits?.driveIdMaxLen ?? 0) + 1)));
  } finally {
    await vmm.close();
  }
  const err = t.throws(() => readVmmLimits("/nonexistent/vmctl-vmm"), { instanceOf: VmctlError });
  t.is(err?.code, "FAILED_PRECONDITION");
});

test("a refusal is a VmctlError with the status's name as code and the VMM's field in its details", async (t) => {
  const vmm = await VmmProcess.spawn({ binary: requireVmmBinary() });
  const dir = mkdtempSync(join(tmpdir(), "vmctl-vmm-client-"));
  try {
    const disk = join(dir, "disk.img");
    writeFileSync(disk, Buffer.alloc(4096));
    const invalid = await t.throwsAsync(vmm.client.putMachineConfig({ vcpuCount: 0 }), { instanceOf: VmctlError });
    t.is(invalid?.code, "INVALID_ARGUMENT");
    t.deepEqual(invalid?.details, { field: "machine_config.vcpu_count" });
    await vmm.client.putDrive({ driveId: "a", pathOnHost: disk });
    const shared = await t.throwsAsync(vmm.client.putDrive({ driveId: "b", pathOnHost: disk }), { instanceOf: VmctlError });
    t.is(shared?.code, "ALREADY_EXISTS");
    t.deepEqual(shared?.details, { field: "drive.path_on_host" });
    const phase = await t.throwsAsync(vmm.client.pause(), { instanceOf: VmctlError });
    t.is(phase?.code, "FAILED_PRECONDITION");
    t.deepEqual(phase?.details, {});
  } finally {
    await vmm.close();
    rmSync(dir, { recursive: true, force: true });
  }
  // Nothing listening: grpc-js's UNAVAILABLE, the one "not there (yet)" rule.
  const absent = new VmmClient(join(dir, "no.sock"));
  const unavailable = await t.throwsAsync(absent.getState({ timeoutMs: 2000 }), { instanceOf: VmctlError });
  absent.close();
  t.is(unavailable?.code, "UNAVAILABLE");
});
