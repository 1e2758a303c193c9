import test from "ava";
import { exitFromVm, lostExit, PANIC_PREFIX, parseExit, PVM_HINT, serializeExit } from "./exit.js";

const at = new Date("2025-01-01T00:00:00Z");
const plain = { stopRequested: false, at };
const stopped = { stopRequested: true, at };

test("guest-exit carries the guest's code, even during a stop", (t) => {
  t.deepEqual(exitFromVm({ reason: "guest-exit", code: 7, detail: "" }, plain), { code: 7, reason: "exited", at });
  t.deepEqual(exitFromVm({ reason: "guest-exit", code: 0, detail: "" }, stopped), { code: 0, reason: "exited", at });
});

test("reset and shutdown are clean ends with code 0; after stop() the detail says so", (t) => {
  t.deepEqual(exitFromVm({ reason: "reset", code: 0, detail: "" }, plain), { code: 0, reason: "reset", at });
  const e = exitFromVm({ reason: "reset", code: 0, detail: "i8042 reset" }, stopped);
  t.is(e.code, 0);
  t.is(e.reason, "reset");
  t.regex(e.detail ?? "", /after stop\(\) sent Ctrl-Alt-Del; i8042 reset/);
  t.is(exitFromVm({ reason: "shutdown", code: 0, detail: "" }, plain).reason, "shutdown");
});

test("forced is stopped with no code; unrequested force says so", (t) => {
  t.deepEqual(exitFromVm({ reason: "forced", code: 0, detail: "" }, stopped), { code: null, reason: "stopped", at });
  const e = exitFromVm({ reason: "forced", code: 0, detail: "" }, plain);
  t.is(e.reason, "stopped");
  t.regex(e.detail ?? "", /not at vmctl's request/);
});

test("KVM and VMM errors fail with their detail", (t) => {
  const kvm = exitFromVm({ reason: "kvm-error", code: 0, detail: "emulation failure rip=0x100010" }, plain);
  t.deepEqual(kvm, { code: null, reason: "failed", detail: "KVM error: emulation failure rip=0x100010", at });
  t.is(exitFromVm({ reason: "vmm-error", code: 0, detail: "boom" }, plain).detail, "VMM error: boom");
  t.is(exitFromVm({ reason: "unknown", code: 0, detail: "" }, plain).reason, "failed");
});

test("a KVM error on a PVM host says that this KVM cannot run a stock Linux", (t) => {
  const kvm = exitFromVm({ reason: "kvm-error", code: 0, detail: "emulation failure" }, { ...plain, pvmHost: true });
  t.is(kvm.detail, `KVM error: emulation failure (${PVM_HINT})`);
  t.regex(PVM_HINT, /PVM.*vmctl doctor/);
  // Only KVM errors: a VMM error is not about the host's KVM.
  t.is(exitFromVm({ reason: "vmm-error", code: 0, detail: "boom" }, { ...plain, pvmHost: true }).detail, "VMM error: boom");
});

test("exits round-trip through their file form", (t) => {
  for (const e of [exitFromVm({ reason: "guest-exit", code: 3, detail: "" }, plain), lostExit(at), exitFromVm({ reason: "kvm-error", code: 0, detail: "x" }, plain)]) {
    t.deepEqual(parseExit(serializeExit(e)), e);
  }
  t.is(parseExit("garbage"), undefined);
  t.is(parseExit("{}"), undefined);
});

test("a reset after a kernel panic is a failure with the panic line, also during a stop", (t) => {
  const detail = `${PANIC_PREFIX} Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100; i8042 reset`;
  for (const ctx of [plain, { ...plain, stopRequested: true }]) {
    const e = exitFromVm({ reason: "reset", code: 0, detail }, ctx);
    t.deepEqual(e, { code: null, reason: "failed", detail, at });
  }
  t.is(exitFromVm({ reason: "reset", code: 0, detail: "i8042 reset" }, plain).code, 0);
});
