// Every basic test guest, booted through the VMM's gRPC API from TypeScript on real
// /dev/kvm: console facts, exit code and reason, metrics.
import { existsSync } from "node:fs";
import test from "ava";
import { bootGuest } from "../guests/harness.js";

const PVM = existsSync("/sys/module/kvm_pvm");

test("boot_params: e820, zero page and command line match the configuration", async (t) => {
  const { state, facts } = await bootGuest({ test: "boot_params", memMib: 64, args: ["extra.word=1"] });
  t.is(state.exit?.code, 0, JSON.stringify(state));
  t.is(facts.get("e820_ram_top"), "0x4000000", "RAM ends at 64 MiB");
  t.is(facts.get("boot_params"), "0x7000");
  t.is(facts.get("cmd_line_ptr"), "0x20000");
  t.is(facts.get("cmdline"), "console=ttyS0 vmctl.test=boot_params extra.word=1");
});

test("exit port: the guest's code becomes the VM's exit code", async (t) => {
  const { state, metrics, facts } = await bootGuest({ test: "exit_code", args: ["vmctl.exit=42"] });
  t.is(state.exit?.reason, "guest-exit");
  t.is(state.exit?.code, 42);
  t.is(facts.get("exit"), "42");
  t.true((metrics.bootDoneUs ?? 0) > 0);
});

test("i8042 reset ends the VM with reason reset", async (t) => {
  const { state, console } = await bootGuest({ test: "reset" });
  t.is(state.exit?.reason, "reset", console);
});

test("serial interrupt travels irqfd → IOAPIC → LAPIC → IDT", async (t) => {
  const { state, facts, console } = await bootGuest({ test: "irq_serial" });
  t.is(state.exit?.code, 0, console);
  t.is(facts.get("irq_vector"), "0x40");
});

test("an instruction KVM cannot run ends the VM with a clear reason, never a hang", async (t) => {
  const { state, console } = await bootGuest({ test: "int3" });
  if (PVM) {
    t.is(state.exit?.reason, "kvm-error", JSON.stringify(state));
    t.regex(state.exit?.detail ?? "", /emulation failure.*rip=0x[0-9a-f]+/);
  } else {
    t.is(state.exit?.code, 3);
    t.regex(console, /exception vector=3/);
  }
});

test("two vCPUs: the MP table lists both and both run guest code", async (t) => {
  const { state, facts, console } = await bootGuest({ test: "smp", vcpus: 2 });
  t.is(state.exit?.code, 0, console);
  t.is(facts.get("mp_cpus"), "2");
  t.is(facts.get("cpus_in_guest_code"), "2");
});
