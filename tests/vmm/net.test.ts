// virtio-net through the VMM API, driven from TypeScript, against real TAP devices: each
// test makes its own network namespace (`ip netns add`), its TAPs in there, and runs the
// VMM in it (`ip netns exec`), so the host's own interfaces are never touched.
// PutNetworkInterface's refusals, the TAP attached at Start (carrier up, vnet header on)
// and let go when the VMM exits, Put refused after Start, the per-interface metrics.
// No test guest drives virtio-net yet: frames through the device are proven by the device
// model's tests (crates/devices, on a real TAP) and through a real Linux guest by the
// nested harness.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import test from "ava";
import { type ErrorCode, VmctlError } from "@vmctl/core/contract";
import { requireVmmBinary, VmmProcess } from "@vmctl/vmm-client";
import { requireGuestElf } from "../guests/harness.js";

const MAC = "02:00:00:00:00:01";

function ip(...args: string[]): string {
  try {
    return execFileSync("ip", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (err) {
    const e = err as { stderr?: string; code?: string };
    if (e.code === "ENOENT") throw new Error("`ip` (iproute2) is needed to make the test's network namespace and TAPs");
    throw new Error(`ip ${args.join(" ")}: ${e.stderr ?? String(err)}`);
  }
}

/** A network namespace of the test's own, removed (with its TAPs) at the end. */
function netns(): { name: string; addTap: (tap: string) => void; link: (tap: string) => LinkInfo; cleanup: () => void } {
  const name = `vmctl-net-${process.pid}-${randomBytes(3).toString("hex")}`;
  ip("netns", "add", name);
  return {
    name,
    addTap: (tap) => {
      ip("-n", name, "tuntap", "add", "dev", tap, "mode", "tap");
      ip("-n", name, "link", "set", tap, "up");
    },
    link: (tap) => {
      const [info] = JSON.parse(ip("-n", name, "-d", "-j", "link", "show", tap)) as LinkInfo[];
      if (!info) throw new Error(`no link ${tap} in ${name}`);
      return info;
    },
    cleanup: () => {
      try {
        ip("netns", "del", name);
      } catch {
        // Already gone.
      }
    },
  };
}

interface LinkInfo {
  readonly flags: readonly string[];
  readonly linkinfo?: { readonly info_kind?: string; readonly info_data?: { readonly type?: string; readonly vnet_hdr?: boolean } };
}

async function vmmIn(ns: string): Promise<VmmProcess> {
  return VmmProcess.spawn({ binary: requireVmmBinary(), runUnder: ["ip", "netns", "exec", ns] });
}

async function refused(
  t: import("ava").ExecutionContext,
  call: Promise<unknown>,
  code: ErrorCode,
  field: string,
  what: string,
): Promise<void> {
  const err = await t.throwsAsync(call, { instanceOf: VmctlError }, what);
  t.is(err?.code, code, `${what}: ${err?.message}`);
  t.is(err?.details.field, field, what);
  t.true(err?.message.startsWith(`${field}: `), `${what}: ${err?.message}`);
}

test("PutNetworkInterface refuses bad input naming the field and stores nothing; duplicates are ALREADY_EXISTS", async (t) => {
  const ns = netns();
  try {
    ns.addTap("tap0");
    ns.addTap("tap1");
    const vmm = await vmmIn(ns.name);
    try {
      const { client } = vmm;
      t.is((await client.getInfo()).limits?.hostDevNameMaxLen, 15);
      const bad: [Parameters<typeof client.putNetworkInterface>[0], string, string][] = [
        [{ ifaceId: "eth0", hostDevName: "tap0", guestMac: "01:00:5e:00:00:01" }, "network_interface.guest_mac", "multicast MAC"],
        [{ ifaceId: "eth0", hostDevName: "tap0", guestMac: "ff:ff:ff:ff:ff:ff" }, "network_interface.guest_mac", "broadcast MAC"],
        [{ ifaceId: "eth0", hostDevName: "tap0", guestMac: "02:00:00:00:00" }, "network_interface.guest_mac", "short MAC"],
        [{ ifaceId: "eth0", hostDevName: "tap0", guestMac: "00:00:00:00:00:00" }, "network_interface.guest_mac", "zero MAC"],
        [{ ifaceId: "eth0", hostDevName: "x".repeat(16), guestMac: MAC }, "network_interface.host_dev_name", "16-byte name"],
        [{ ifaceId: "eth0", hostDevName: "", guestMac: MAC }, "network_interface.host_dev_name", "empty name"],
        [{ ifaceId: "eth0", hostDevName: "a/b", guestMac: MAC }, "network_interface.host_dev_name", "'/' in the name"],
        [{ ifaceId: "eth0", hostDevName: "ta\0p", guestMac: MAC }, "network_interface.host_dev_name", "NUL in the name"],
        [{ ifaceId: "eth0", hostDevName: "nosuchtap", guestMac: MAC }, "network_interface.host_dev_name", "a TAP that does not exist"],
        [{ ifaceId: "", hostDevName: "tap0", guestMac: MAC }, "network_interface.iface_id", "empty id"],
        [{ ifaceId: "eth 0", hostDevName: "tap0", guestMac: MAC }, "network_interface.iface_id", "space in the id"],
        [{ ifaceId: "eth0", tapFd: 0, guestMac: MAC }, "network_interface.tap_fd", "stdin is no TAP"],
        [{ ifaceId: "eth0", tapFd: 4096, guestMac: MAC }, "network_interface.tap_fd", "a closed descriptor"],
      ];
      for (const [iface, field, what] of bad) await refused(t, client.putNetworkInterface(iface), "INVALID_ARGUMENT", field, what);
      t.deepEqual(await client.listNetworkInterfaces(), [], "nothing stored by a refusal");

      const eth0 = { ifaceId: "eth0", hostDevName: "tap0", guestMac: MAC };
      t.deepEqual(await client.putNetworkInterface(eth0), eth0);
      await refused(t, client.putNetworkInterface({ ...eth0, hostDevName: "tap1", guestMac: "02:00:00:00:00:02" }), "ALREADY_EXISTS", "network_interface.iface_id", "same id");
      await refused(t, client.putNetworkInterface({ ...eth0, ifaceId: "eth1", guestMac: "02:00:00:00:00:02" }), "ALREADY_EXISTS", "network_interface.host_dev_name", "same TAP");
      await refused(t, client.putNetworkInterface({ ...eth0, ifaceId: "eth1", hostDevName: "tap1" }), "ALREADY_EXISTS", "network_interface.guest_mac", "same MAC");
      const eth1 = { ifaceId: "eth1", hostDevName: "tap1", guestMac: "02:00:00:00:00:02" };
      await client.putNetworkInterface(eth1);
      t.deepEqual(await client.listNetworkInterfaces(), [eth0, eth1], "in the order added");
      // Nothing attached yet: the TAPs have no reader.
      t.true(ns.link("tap0").flags.includes("NO-CARRIER"));
    } finally {
      await vmm.close();
    }
  } finally {
    ns.cleanup();
  }
});

test("Start attaches the TAP (carrier up, vnet header on); Put is refused while running; metrics per interface; the TAP is let go when the VMM exits", async (t) => {
  const ns = netns();
  try {
    ns.addTap("tap0");
    const vmm = await vmmIn(ns.name);
    try {
      const { client } = vmm;
      await client.putMachineConfig({ vcpuCount: 1, memSizeMib: 32 });
      await client.putBootSource({ kernelImagePath: requireGuestElf(), bootArgs: "console=ttyS0 vmctl.test=idle" });
      await client.putNetworkInterface({ ifaceId: "eth0", hostDevName: "tap0", guestMac: MAC });
      t.true(ns.link("tap0").flags.includes("NO-CARRIER"), "no reader before Start");
      t.is((await client.start()).phase, "running");

      const link = ns.link("tap0");
      t.false(link.flags.includes("NO-CARRIER"), `attached: ${link.flags.join(",")}`);
      t.true(link.flags.includes("LOWER_UP"));
      t.is(link.linkinfo?.info_data?.type, "tap");
      t.true(link.linkinfo?.info_data?.vnet_hdr, "IFF_VNET_HDR");

      const err = await t.throwsAsync(client.putNetworkInterface({ ifaceId: "eth1", hostDevName: "tap0", guestMac: "02:00:00:00:00:02" }), { instanceOf: VmctlError });
      t.is(err?.code, "FAILED_PRECONDITION");
      t.deepEqual((await client.listNetworkInterfaces()).map((n) => n.ifaceId), ["eth0"]);

      const metrics = await client.getMetrics();
      t.deepEqual(metrics.net, [
        { ifaceId: "eth0", rxPackets: 0, rxBytes: 0, rxDropped: 0, rxNoBuffer: 0, txPackets: 0, txBytes: 0, txDropped: 0, txWouldBlock: 0, failed: false },
      ]);
    } finally {
      await vmm.close();
    }
    t.true(ns.link("tap0").flags.includes("NO-CARRIER"), "the VMM's descriptor closed with it");
  } finally {
    ns.cleanup();
  }
});

test("a TAP deleted between Put and Start fails Start naming the field; the VM stays configurable and starts once the TAP is back", async (t) => {
  const ns = netns();
  try {
    ns.addTap("tap0");
    const vmm = await vmmIn(ns.name);
    try {
      const { client } = vmm;
      await client.putMachineConfig({ vcpuCount: 1, memSizeMib: 32 });
      await client.putBootSource({ kernelImagePath: requireGuestElf(), bootArgs: "console=ttyS0 vmctl.test=idle" });
      await client.putNetworkInterface({ ifaceId: "eth0", hostDevName: "tap0", guestMac: MAC });
      ip("-n", ns.name, "link", "del", "tap0");
      await refused(t, client.start(), "INVALID_ARGUMENT", "network_interface.host_dev_name", "TAP gone at Start");
      t.is((await client.getState()).phase, "configuring");
      // A link of that name that is not a TAP (a TUN) is refused too.
      ip("-n", ns.name, "tuntap", "add", "dev", "tap0", "mode", "tun");
      await refused(t, client.start(), "INVALID_ARGUMENT", "network_interface.host_dev_name", "not a TAP");
      ip("-n", ns.name, "link", "del", "tap0");
      ns.addTap("tap0");
      t.is((await client.start()).phase, "running");
      t.false(ns.link("tap0").flags.includes("NO-CARRIER"));
    } finally {
      await vmm.close();
    }
  } finally {
    ns.cleanup();
  }
});
