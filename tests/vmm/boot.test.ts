// Test guests booted through real /dev/kvm via the VMM's gRPC API: console output,
// exit code and reason, metrics.
import test from "ava";
import { bootGuest } from "../guests/harness.js";

test("serial hello: console output, exit code 0, boot-done recorded", async (t) => {
  const { state, console, metrics } = await bootGuest({ test: "hello" });
  t.is(state.phase, "exited");
  t.is(state.exit?.reason, "guest-exit");
  t.is(state.exit?.code, 0);
  t.regex(console, /^vmctl-guest: hello start$/m);
  t.regex(console, /^vmctl-guest: hello PASS$/m);
  t.true((metrics.bootDoneUs ?? 0) > 0, "boot-done was never recorded");
  t.true((metrics.vmExits.io_out ?? 0) > 0, `no port writes counted: ${JSON.stringify(metrics.vmExits)}`);
  t.is(metrics.consoleBytesOut, Buffer.byteLength(console));
});

test("an unknown test name ends the VM with exit code 2", async (t) => {
  const { state, console } = await bootGuest({ test: "no-such-test" });
  t.is(state.exit?.reason, "guest-exit");
  t.is(state.exit?.code, 2);
  t.regex(console, /no-such-test/);
});
