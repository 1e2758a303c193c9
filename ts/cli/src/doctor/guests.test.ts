// How doctor tells the KVM kind from the host's signs. This host is PVM; the SVM and VMX
// answers are checked here on the signs such hosts show (/sys/module/kvm_amd|kvm_intel,
// the svm/vmx CPU flags), the PVM one also end to end in doctor.test.ts.
import test from "ava";
import type { KvmInfo } from "@vmctl/native";
import { guestSupport, readHostSigns } from "./guests.js";

const kvm = (pvm: boolean): KvmInfo => ({ devicePath: "/dev/kvm", available: true, apiVersion: 12, pvm });
const none = { modules: [], cpuFlags: [] };

test("PVM: no Linux guests, the nested host named, whatever the CPU flags say", (t) => {
  const pvm = guestSupport(kvm(true), { modules: [], cpuFlags: ["svm"] });
  t.is(pvm.kvm, "pvm");
  t.false(pvm.linuxGuests);
  t.regex(pvm.summary, /Linux guests cannot boot on this KVM, only vmctl's test guests; real Linux is proven through the nested test host \(tests\/nested\/, run by npm test\)/);
});

test("SVM and VMX: Linux guests supported; the loaded module decides over the flags", (t) => {
  t.like(guestSupport(kvm(false), { modules: ["kvm_amd"], cpuFlags: ["svm"] }), { kvm: "svm", linuxGuests: true });
  t.like(guestSupport(kvm(false), { modules: ["kvm_intel"], cpuFlags: ["vmx"] }), { kvm: "vmx", linuxGuests: true });
  t.like(guestSupport(kvm(false), { modules: [], cpuFlags: ["svm"] }), { kvm: "svm", linuxGuests: true });
  t.like(guestSupport(kvm(false), { modules: [], cpuFlags: ["vmx"] }), { kvm: "vmx", linuxGuests: true });
  t.like(guestSupport(kvm(false), { modules: ["kvm_intel"], cpuFlags: ["svm"] }), { kvm: "vmx" });
  t.regex(guestSupport(kvm(false), { modules: ["kvm_amd"], cpuFlags: [] }).summary, /^AMD SVM KVM \(kvm_amd\): Linux guests are supported$/);
  t.regex(guestSupport(kvm(false), { modules: ["kvm_intel"], cpuFlags: [] }).summary, /^Intel VMX KVM \(kvm_intel\): Linux guests are supported$/);
});

test("no sign either way: said so; no KVM at all: no microVMs", (t) => {
  t.like(guestSupport(kvm(false), none), { kvm: "unknown", linuxGuests: true });
  t.regex(guestSupport(kvm(false), none).summary, /not proven on such a host/);
  t.like(guestSupport({ devicePath: "/dev/kvm", available: false, error: "ENOENT", pvm: false }, none), { kvm: "none", linuxGuests: false });
});

test("this host's signs are read from /sys/module and /proc/cpuinfo", (t) => {
  const signs = readHostSigns();
  t.true(Array.isArray(signs.modules) && Array.isArray(signs.cpuFlags));
  for (const m of signs.modules) t.true(["kvm_amd", "kvm_intel"].includes(m));
  for (const f of signs.cpuFlags) t.true(["svm", "vmx"].includes(f));
});
