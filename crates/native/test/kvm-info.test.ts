import { constants, existsSync, openSync, closeSync } from "node:fs";
import test from "ava";
import { kvmInfo } from "@vmctl/native";

/** Opens /dev/kvm the way the VMM does (read-write), independently of the addon. */
function kvmOpens(): boolean {
  try {
    closeSync(openSync("/dev/kvm", constants.O_RDWR));
    return true;
  } catch {
    return false;
  }
}

test("kvmInfo() agrees with /dev/kvm itself", (t) => {
  const info = kvmInfo();
  t.is(info.devicePath, "/dev/kvm");
  t.is(info.available, kvmOpens(), "addon and a direct open disagree about /dev/kvm");
  t.true(info.available, "this suite needs /dev/kvm; it does not open here");
  // KVM_GET_API_VERSION has returned 12 on every Linux since 2.6.22.
  t.is(info.apiVersion, 12);
  t.truthy(info.capabilities);
  t.true(info.capabilities?.userMemory);
  t.true((info.maxVcpus ?? 0) >= (info.recommendedVcpus ?? 1));
  t.true((info.recommendedVcpus ?? 0) >= 1);
  t.is(info.error, undefined);
});

test("kvmInfo() reports PVM exactly when the kvm_pvm module is loaded", (t) => {
  t.is(kvmInfo().pvm, existsSync("/sys/module/kvm_pvm"));
});

test("kvmInfo() explains a device node that does not exist", (t) => {
  const info = kvmInfo({ devicePath: "/nonexistent/kvm" });
  t.false(info.available);
  t.is(info.errorCode, "ENOENT");
  t.regex(info.error ?? "", /\/nonexistent\/kvm/);
  t.is(info.apiVersion, undefined);
  t.is(info.capabilities, undefined);
});

test("kvmInfo() refuses a device that is not KVM", (t) => {
  const info = kvmInfo({ devicePath: "/dev/null" });
  t.false(info.available);
  t.is(info.errorCode, "NOT_KVM");
});
