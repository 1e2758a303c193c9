// Bad input to the VMM API: each mistake gets the right gRPC status and a message
// naming the field, and the VMM stays ready for a corrected request.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { VmctlError } from "@vmctl/core/contract";
import { requireVmmBinary, VmmProcess } from "@vmctl/vmm-client";
import { NOT_ELF, requireGuestElf } from "../guests/harness.js";

async function withVmm(run: (vmm: VmmProcess) => Promise<void>): Promise<void> {
  const vmm = await VmmProcess.spawn({ binary: requireVmmBinary() });
  try {
    await run(vmm);
  } finally {
    await vmm.close();
  }
}

function tempFile(name: string, bytes: number): { path: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "vmctl-test-"));
  const path = join(dir, name);
  writeFileSync(path, Buffer.alloc(bytes));
  return { path, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

test("0 vCPUs is INVALID_ARGUMENT naming vcpu_count; a corrected config is accepted", async (t) => {
  await withVmm(async ({ client }) => {
    const err = await t.throwsAsync(client.putMachineConfig({ vcpuCount: 0, memSizeMib: 32 }), { instanceOf: VmctlError });
    t.is(err?.code, "INVALID_ARGUMENT");
    t.regex(err?.message ?? "", /vcpu_count/);
    t.deepEqual(await client.putMachineConfig({ vcpuCount: 1, memSizeMib: 32 }), { vcpuCount: 1, memSizeMib: 32 });
    t.deepEqual(await client.getMachineConfig(), { vcpuCount: 1, memSizeMib: 32 });
  });
});

test("too many vCPUs and zero memory are refused naming the field", async (t) => {
  await withVmm(async ({ client }) => {
    const tooMany = await t.throwsAsync(client.putMachineConfig({ vcpuCount: 100_000, memSizeMib: 32 }), { instanceOf: VmctlError });
    t.is(tooMany?.code, "INVALID_ARGUMENT");
    t.regex(tooMany?.message ?? "", /vcpu_count/);
    const noMemory = await t.throwsAsync(client.putMachineConfig({ vcpuCount: 1, memSizeMib: 0 }), { instanceOf: VmctlError });
    t.is(noMemory?.code, "INVALID_ARGUMENT");
    t.regex(noMemory?.message ?? "", /mem_size_mib/);
  });
});

test("a missing kernel is INVALID_ARGUMENT naming kernel_image_path", async (t) => {
  await withVmm(async ({ client }) => {
    const err = await t.throwsAsync(client.putBootSource({ kernelImagePath: "/nonexistent/vmlinux" }), { instanceOf: VmctlError });
    t.is(err?.code, "INVALID_ARGUMENT");
    t.regex(err?.message ?? "", /kernel_image_path/);
    t.regex(err?.message ?? "", /\/nonexistent\/vmlinux/);
    // Still ready: the real guest is accepted afterwards.
    const accepted = await client.putBootSource({ kernelImagePath: requireGuestElf(), bootArgs: "vmctl.test=hello" });
    t.is(accepted.kernelImagePath, requireGuestElf());
  });
});

test("a kernel that is neither ELF nor bzImage is refused naming kernel_image_path", async (t) => {
  await withVmm(async ({ client }) => {
    await client.putMachineConfig({ vcpuCount: 1, memSizeMib: 32 });
    // Refused at PutBootSource or, at the latest, at Start; either way nothing runs.
    const err = await t.throwsAsync(
      (async () => {
        await client.putBootSource({ kernelImagePath: NOT_ELF });
        await client.start();
      })(),
      { instanceOf: VmctlError },
    );
    t.is(err?.code, "INVALID_ARGUMENT");
    t.regex(err?.message ?? "", /kernel_image_path/);
    t.is((await client.getState()).phase, "configuring");
  });
});

test("memory below what the kernel needs is refused at Start naming mem_size_mib", async (t) => {
  await withVmm(async ({ client }) => {
    // The guest is loaded at 1 MiB: one MiB of RAM cannot hold it.
    await client.putMachineConfig({ vcpuCount: 1, memSizeMib: 1 });
    await client.putBootSource({ kernelImagePath: requireGuestElf(), bootArgs: "vmctl.test=hello" });
    const err = await t.throwsAsync(client.start(), { instanceOf: VmctlError });
    t.is(err?.code, "INVALID_ARGUMENT");
    t.regex(err?.message ?? "", /mem_size_mib/);
    t.is((await client.getState()).phase, "configuring");
    // Corrected, the same VMM boots the guest.
    await client.putMachineConfig({ vcpuCount: 1, memSizeMib: 32 });
    const exited = client.waitExit();
    await client.start();
    const final = await exited;
    t.is(final.exit?.reason, "guest-exit");
    t.is(final.exit?.code, 0);
  });
});

test("a drive whose path does not exist is INVALID_ARGUMENT naming path_on_host", async (t) => {
  await withVmm(async ({ client }) => {
    const err = await t.throwsAsync(client.putDrive({ driveId: "root", pathOnHost: "/nonexistent/disk.img" }), {
      instanceOf: VmctlError,
    });
    t.is(err?.code, "INVALID_ARGUMENT");
    t.regex(err?.message ?? "", /path_on_host/);
    t.deepEqual(await client.listDrives(), []);
  });
});

test("two root drives, or an empty drive id, are refused and the drive list is unchanged", async (t) => {
  const disk = tempFile("disk.img", 1 << 20);
  const other = tempFile("other.img", 1 << 20);
  try {
    await withVmm(async ({ client }) => {
      await client.putDrive({ driveId: "root", pathOnHost: disk.path, isRootDevice: true });
      const twoRoots = await t.throwsAsync(
        client.putDrive({ driveId: "second", pathOnHost: other.path, isRootDevice: true }),
        { instanceOf: VmctlError },
      );
      t.is(twoRoots?.code, "ALREADY_EXISTS");
      t.regex(twoRoots?.message ?? "", /is_root_device/);
      const noId = await t.throwsAsync(client.putDrive({ driveId: "", pathOnHost: other.path }), { instanceOf: VmctlError });
      t.is(noId?.code, "INVALID_ARGUMENT");
      t.regex(noId?.message ?? "", /drive_id/);
      const drives = await client.listDrives();
      t.is(drives.length, 1);
      t.is(drives[0]?.driveId, "root");
    });
  } finally {
    disk.cleanup();
    other.cleanup();
  }
});

test("configuration after Start is FAILED_PRECONDITION", async (t) => {
  await withVmm(async ({ client }) => {
    await client.putMachineConfig({ vcpuCount: 1, memSizeMib: 32 });
    await client.putBootSource({ kernelImagePath: requireGuestElf(), bootArgs: "vmctl.test=hello" });
    const exited = client.waitExit();
    await client.start();
    const err = await t.throwsAsync(client.putMachineConfig({ vcpuCount: 2, memSizeMib: 64 }), { instanceOf: VmctlError });
    t.is(err?.code, "FAILED_PRECONDITION");
    const again = await t.throwsAsync(client.start(), { instanceOf: VmctlError });
    t.is(again?.code, "FAILED_PRECONDITION");
    await exited;
  });
});

test("Start without a boot source is FAILED_PRECONDITION naming boot_source", async (t) => {
  await withVmm(async ({ client }) => {
    const err = await t.throwsAsync(client.start(), { instanceOf: VmctlError });
    t.is(err?.code, "FAILED_PRECONDITION");
    t.regex(err?.message ?? "", /boot.source/);
  });
});

test("two drives with one id: the second is ALREADY_EXISTS naming drive_id", async (t) => {
  const disk = tempFile("disk.img", 1 << 20);
  const other = tempFile("other.img", 1 << 20);
  try {
    await withVmm(async ({ client }) => {
      await client.putDrive({ driveId: "data", pathOnHost: disk.path });
      const err = await t.throwsAsync(client.putDrive({ driveId: "data", pathOnHost: other.path }), { instanceOf: VmctlError });
      t.is(err?.code, "ALREADY_EXISTS");
      t.regex(err?.message ?? "", /drive_id/);
      const drives = await client.listDrives();
      t.deepEqual(drives.map((d) => d.pathOnHost), [disk.path]);
    });
  } finally {
    disk.cleanup();
    other.cleanup();
  }
});
