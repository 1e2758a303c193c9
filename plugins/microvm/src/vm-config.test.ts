import test from "ava";
import { VmctlError } from "@vmctl/core/contract";
import { agentBootArgs, IMAGE_ROOT_ARGS, parseVmConfig, specField, vmConfig, withImageRoot, withKernelWords, type VmAgent, type VmImage, type VmScratch } from "./vm-config.js";
import type { VmNetwork } from "./vm-network.js";

const image: VmImage = { reference: "node:20", digest: `sha256:${"a".repeat(64)}`, disk: "/state/images/disks/a.ext4", diskBytes: 17_825_792 };
const scratch: VmScratch = { path: "/state/services/s1/scratch.ext4", sizeBytes: 64 * 1024 * 1024 };

test("without an image, the VM is the spec with its defaults (vm.json as before images)", (t) => {
  t.deepEqual(vmConfig("vmctl-s1", { kernel: "/k", bootArgs: "console=ttyS0", drives: [{ id: "d", path: "/d" }] }), {
    vmId: "vmctl-s1",
    kernel: "/k",
    bootArgs: "console=ttyS0",
    vcpus: 1,
    memoryMib: 128,
    drives: [{ id: "d", path: "/d" }],
  });
});

test("with an image: rootfs (read-only root) then scratch, ahead of the user's drives; root= added", (t) => {
  const vm = vmConfig("vmctl-s1", { kernel: "/k", image: "node:20", bootArgs: "console=ttyS0", drives: [{ id: "data", path: "/d", readOnly: true }] }, { image, scratch });
  t.deepEqual(vm.drives, [
    { id: "rootfs", path: image.disk, readOnly: true, root: true },
    { id: "scratch", path: scratch.path, readOnly: false },
    { id: "data", path: "/d", readOnly: true },
  ]);
  t.is(vm.bootArgs, `console=ttyS0 ${IMAGE_ROOT_ARGS}`);
  t.deepEqual(vm.image, image);
  t.deepEqual(vm.scratch, scratch);
  t.throws(() => vmConfig("vmctl-s1", { kernel: "/k", image: "node:20" }), { message: /needs the resolved image/ });
});

test("root= is added unless the kernel's part of the command line names one, and never after --", (t) => {
  t.is(withImageRoot(""), IMAGE_ROOT_ARGS);
  t.is(withImageRoot("console=ttyS0 reboot=k panic=1"), `console=ttyS0 reboot=k panic=1 ${IMAGE_ROOT_ARGS}`);
  t.is(withImageRoot("console=ttyS0 root=/dev/vdb rw"), "console=ttyS0 root=/dev/vdb rw");
  t.is(withImageRoot("console=ttyS0 -- init-arg"), `console=ttyS0 ${IMAGE_ROOT_ARGS} -- init-arg`);
  t.is(withImageRoot("console=ttyS0 -- root=/x"), `console=ttyS0 ${IMAGE_ROOT_ARGS} -- root=/x`, "a root= after -- is init's");
  t.is(withImageRoot("rootwait quiet"), `rootwait quiet ${IMAGE_ROOT_ARGS}`, "rootwait is not root=");
});

test("vm.json reads back; old files (no image) too; a broken one is INTERNAL naming the file", (t) => {
  const vm = vmConfig("vmctl-s1", { kernel: "/k", image: "node:20" }, { image, scratch });
  t.deepEqual(parseVmConfig(JSON.stringify(vm), "/f/vm.json"), vm);
  const old = { vmId: "vmctl-s1", kernel: "/k", bootArgs: "", vcpus: 1, memoryMib: 128, drives: [] };
  t.deepEqual(parseVmConfig(JSON.stringify(old), "/f/vm.json"), old);
  for (const bad of ["{", "[]", "null", JSON.stringify({ ...old, drives: [{ id: 1 }] }), JSON.stringify({ ...vm, scratch: undefined }), JSON.stringify({ ...vm, image: { digest: "x" } })]) {
    const err = t.throws(() => parseVmConfig(bad, "/f/vm.json"), { instanceOf: VmctlError });
    t.is(err?.code, "INTERNAL");
    t.regex(err?.message ?? "", /^\/f\/vm\.json: /);
  }
});

const agent: VmAgent = {
  initrd: "/build/vmctl-agent.initramfs",
  vsock: { guestCid: 3, udsPath: "/state/services/s1/vsock.sock" },
  relaySocket: "/state/services/s1/agent.sock",
  port: 1024,
  hostname: "s1",
  workload: { args: ["sh", "-c", "exit 7"], imageEnv: ["PATH=/bin"], env: ["A=b"], cwd: "/" },
};

test("with the agent: its initramfs is the initrd, its arguments plain words after rdinit=/init (the VMM's device words come after them); vm.json reads back", (t) => {
  const vm = vmConfig("vmctl-s1", { kernel: "/k", image: "default", agent: true, bootArgs: "console=ttyS0 quiet" }, { image, scratch, agent });
  t.is(vm.initrd, agent.initrd);
  t.deepEqual(vm.agent, agent);
  t.is(vm.bootArgs, "console=ttyS0 quiet root=/dev/vda ro rdinit=/init --root-base /dev/vda --root-scratch /dev/vdb --hostname s1 --listen vsock:1024");
  t.false(vm.bootArgs.split(" ").includes("--"), "nothing behind a --: the kernel would not read the VMM's virtio_mmio words there");
  t.deepEqual(parseVmConfig(JSON.stringify(vm), "vm.json"), vm);
  // A hostname the kernel would not hand to init whole (a dot, an =) is left to the agent's default.
  t.notRegex(agentBootArgs("console=ttyS0 init=/x -- a b", { ...agent, hostname: "a.b" }), /--hostname|init=\/x| a b/);
  t.throws(() => parseVmConfig(JSON.stringify({ ...vm, agent: { ...agent, workload: { args: "sh" } } }), "vm.json"), { message: /agent\.workload/ });
});

test("with the agent's workspace (mounts, copyOut): vm.json reads back; a malformed one is INTERNAL naming agent.workspace", (t) => {
  const workspace = { mounts: [{ source: "/home/me/src", destination: "/src", readOnly: true }], copyOut: ["/src/out"] };
  const vm = vmConfig("vmctl-s1", { kernel: "/k", image: "default", agent: true }, { image, scratch, agent: { ...agent, workspace } });
  t.deepEqual(vm.agent?.workspace, workspace);
  t.deepEqual(parseVmConfig(JSON.stringify(vm), "vm.json"), vm);
  for (const bad of [{ mounts: [] }, { mounts: [{ source: "/a" }], copyOut: [] }, { mounts: [null], copyOut: [] }, { mounts: [], copyOut: [1] }]) {
    t.throws(() => parseVmConfig(JSON.stringify({ ...vm, agent: { ...agent, workspace: bad } }), "vm.json"), { message: /agent\.workspace/ });
  }
});

const network: VmNetwork = { hostDevice: "vmtap-0123456789", mac: "02:00:0a:58:01:05", address: "10.88.1.5", prefixLength: 24, gateway: "10.88.1.1", dns: ["10.88.1.1", "1.1.1.1"], mtu: 1500 };
const NET_WORDS = "vmctl.net=10.88.1.5/24,10.88.1.1,1500 vmctl.dns=10.88.1.1,1.1.1.1";

test("with a network: its settings are dotted kernel words (kept from init's arguments, read by the agent from /proc/cmdline), for every kind of VM", (t) => {
  const withAgent = vmConfig("vmctl-s1", { kernel: "/k", image: "default", agent: true, bootArgs: "console=ttyS0 quiet" }, { image, scratch, agent }, network);
  t.is(withAgent.bootArgs, `console=ttyS0 quiet ${NET_WORDS} root=/dev/vda ro rdinit=/init --root-base /dev/vda --root-scratch /dev/vdb --hostname s1 --listen vsock:1024`);
  t.deepEqual(withAgent.network, network);
  t.deepEqual(parseVmConfig(JSON.stringify(withAgent), "vm.json"), withAgent);
  // A kernel-only VM gets the NIC and the same words: its own init configures the guest.
  const kernelOnly = vmConfig("vmctl-s1", { kernel: "/k", bootArgs: "console=ttyS0 -- init-arg" }, undefined, network);
  t.is(kernelOnly.bootArgs, `console=ttyS0 ${NET_WORDS} -- init-arg`, "before a --: after it they would be init's arguments");
  t.deepEqual(kernelOnly.network, network);
  // The lease is the truth: words of the spec's own are replaced, not repeated.
  t.is(vmConfig("vmctl-s1", { kernel: "/k", bootArgs: "vmctl.net=1.2.3.4/8,1.0.0.1 quiet vmctl.dns=8.8.8.8" }, undefined, { ...network, dns: [] }).bootArgs, "quiet vmctl.net=10.88.1.5/24,10.88.1.1,1500");
  // Without a network: no words, no network in vm.json (as before networks).
  const none = vmConfig("vmctl-s1", { kernel: "/k", bootArgs: "console=ttyS0" });
  t.is(none.bootArgs, "console=ttyS0");
  t.false("network" in none);
  t.is(withKernelWords("a -- b", []), "a -- b");
});

test("vm.json with a malformed network is INTERNAL naming network; a refusal of the NIC names the service's network", (t) => {
  const vm = vmConfig("vmctl-s1", { kernel: "/k" }, undefined, network);
  for (const bad of [{ ...network, mtu: "1500" }, { ...network, dns: "10.88.1.1" }, { ...network, hostDevice: undefined }, null]) {
    t.throws(() => parseVmConfig(JSON.stringify({ ...vm, network: bad }), "vm.json"), { message: /^vm\.json: network is not/ });
  }
  t.is(specField("network_interface.host_dev_name"), "network");
  t.is(specField("network_interface.guest_mac"), "network");
});
