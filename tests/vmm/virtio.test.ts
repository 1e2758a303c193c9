// virtio-mmio + virtio-blk through real KVM, driven from TypeScript: discovery, feature
// negotiation, data reaching the file, read-only refusal, interrupts, malicious drivers.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test, { type ExecutionContext } from "ava";
import type { BlockMetrics } from "@vmctl/vmm-client";
import { bootGuest, type GuestResult } from "../guests/harness.js";

function disk(name: string, sectors: number): { path: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "vmctl-virtio-"));
  const path = join(dir, name);
  writeFileSync(path, Buffer.from(Array.from({ length: sectors * 512 }, (_, i) => i % 251)));
  return { path, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

function blockOf(result: GuestResult, driveId: string): BlockMetrics {
  const found = result.metrics.block.find((b) => b.driveId === driveId);
  if (!found) throw new Error(`no block metrics for ${driveId}: ${JSON.stringify(result.metrics.block)}`);
  return found;
}

test("discovery: each drive at its address and GSI, the root device first", async (t) => {
  const data = disk("data.img", 128);
  const root = disk("root.img", 256);
  try {
    const result = await bootGuest({
      test: "virtio-discovery",
      drives: [
        { driveId: "data", pathOnHost: data.path, isReadOnly: true },
        { driveId: "root", pathOnHost: root.path, isRootDevice: true },
      ],
    });
    t.is(result.state.exit?.code, 0, result.console);
    const f = result.facts;
    t.is(f.get("virtio_devices"), "2");
    t.is(f.get("dev0_addr"), "0xd0000000");
    t.is(f.get("dev0_irq"), "5");
    t.is(f.get("dev0_capacity"), "256");
    t.is(f.get("dev1_addr"), "0xd0001000");
    t.is(f.get("dev1_irq"), "6");
    t.is(f.get("dev1_read_only"), "1");
  } finally {
    data.cleanup();
    root.cleanup();
  }
});

test("feature negotiation follows the virtio spec", async (t) => {
  const d = disk("d.img", 64);
  try {
    const result = await bootGuest({ test: "virtio-features", drives: [{ driveId: "d", pathOnHost: d.path, isRootDevice: true }] });
    t.is(result.state.exit?.code, 0, result.console);
  } finally {
    d.cleanup();
  }
});

test("write, read back, flush and GET_ID: the guest's data reaches the file", async (t) => {
  const d = disk("rw.img", 128);
  try {
    const before = readFileSync(d.path);
    const result = await bootGuest({
      test: "virtio-blk-rw",
      args: ["vmctl.drive_id=rootfs"],
      drives: [{ driveId: "rootfs", pathOnHost: d.path, isRootDevice: true }],
    });
    t.is(result.state.exit?.code, 0, result.console);
    const after = readFileSync(d.path);
    t.notDeepEqual(after.subarray(8 * 512, 72 * 512), before.subarray(8 * 512, 72 * 512), "writes reached the file");
    t.deepEqual(after.subarray(0, 8 * 512), before.subarray(0, 8 * 512), "sectors before 8 untouched");
    const m = blockOf(result, "rootfs");
    t.true(m.writeRequests >= 1 && m.readRequests >= 1 && m.flushRequests >= 1, JSON.stringify(m));
    t.true(m.writeBytes >= 64 * 512);
    t.is(m.errors, 0);
    t.true(m.busyUs > 0);
  } finally {
    d.cleanup();
  }
});

test("a read-only drive refuses writes with an error status and keeps its data", async (t) => {
  const d = disk("ro.img", 64);
  try {
    const before = readFileSync(d.path);
    const result = await bootGuest({ test: "virtio-blk-ro", drives: [{ driveId: "ro", pathOnHost: d.path, isReadOnly: true, isRootDevice: true }] });
    t.is(result.state.exit?.code, 0, result.console);
    t.deepEqual(readFileSync(d.path), before);
    t.true(blockOf(result, "ro").errors >= 1);
  } finally {
    d.cleanup();
  }
});

test("completion is signalled by an interrupt through the irqfd", async (t) => {
  const d = disk("irq.img", 64);
  try {
    const result = await bootGuest({ test: "virtio-blk-irq", drives: [{ driveId: "d", pathOnHost: d.path, isRootDevice: true }] });
    t.is(result.state.exit?.code, 0, result.console);
  } finally {
    d.cleanup();
  }
});

// What each malicious driver must see. Bad requests are answered with an error status
// (counted in the drive's errors); a malformed queue sets DEVICE_NEEDS_RESET and the
// device works again after the driver resets it; garbage register writes change nothing.
const EVIL: Record<string, (t: ExecutionContext, r: GuestResult) => void> = {
  addr: (t, r) => answeredWithErrors(t, r),
  len: (t, r) => answeredWithErrors(t, r),
  desc: (t, r) => answeredWithErrors(t, r),
  loop: (t, r) => failedThenRecovered(t, r),
  avail: (t, r) => failedThenRecovered(t, r),
  mmio: (t, r) => {
    t.is(r.facts.get("still_works"), "1");
    t.is(blockOf(r, "d").errors, 0);
  },
};

function answeredWithErrors(t: ExecutionContext, r: GuestResult): void {
  t.true(blockOf(r, "d").errors >= 1, JSON.stringify(blockOf(r, "d")));
  t.is(r.facts.get("still_works"), "1");
}

function failedThenRecovered(t: ExecutionContext, r: GuestResult): void {
  const NEEDS_RESET = 0x40;
  t.true((Number(r.facts.get("status")) & NEEDS_RESET) !== 0, `status=${r.facts.get("status")}`);
  t.is(r.facts.get("recovered"), "1");
  t.false(blockOf(r, "d").failed, "still failed after the driver's reset");
}

for (const [evil, check] of Object.entries(EVIL)) {
  test(`malicious driver (${evil}): the device refuses safely and the VMM survives`, async (t) => {
    const d = disk(`${evil}.img`, 64);
    try {
      const before = readFileSync(d.path);
      const result = await bootGuest({ test: `virtio-blk-evil-${evil}`, drives: [{ driveId: "d", pathOnHost: d.path, isRootDevice: true }] });
      t.is(result.state.exit?.reason, "guest-exit", JSON.stringify(result.state));
      t.is(result.state.exit?.code, 0, result.console);
      check(t, result);
      t.is(readFileSync(d.path).length, before.length, "backing file size unchanged");
    } finally {
      d.cleanup();
    }
  });
}
