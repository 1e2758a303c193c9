// The VM as configured: the spec with its defaults, its image resolved to one digest and
// base disk, and the drives in bus order. prepare() writes it to vm.json and start()
// configures the VMM from that file alone, so a start after a restart or adopt boots what
// was prepared — the same image digest, even if the tag has moved to another image since.
import { VmctlError, type BindMount } from "@vmctl/core/contract";
import { effective, IMAGE_DRIVE_IDS, type MicrovmDrive, type MicrovmSpec } from "./spec.js";
import { isNetworkBootWord, networkBootWords, type VmNetwork } from "./vm-network.js";

export const MIB = 1024 * 1024;

/** The image a VM boots, as the image store resolved it at prepare(). */
export type VmImage = {
  /** The reference the spec gave. */
  reference: string;
  /** The manifest digest it resolved to: the image the VM boots from now on. */
  digest: string;
  /** The image's read-only ext4 base disk (the store's; never deleted by this target). */
  disk: string;
  diskBytes: number;
};

/** The VM's own writable layer: a sparse, pre-formatted ext4 disk in its service dir. */
export type VmScratch = {
  path: string;
  sizeBytes: number;
};

/** What the guest agent runs as the VM's workload (resolved at prepare from the spec over the image's config). */
export type VmWorkload = {
  args: string[];
  /** The image config's Env ("KEY=VALUE"). */
  imageEnv: string[];
  /** The spec's env ("KEY=VALUE"), merged over imageEnv by the agent. */
  env: string[];
  cwd?: string;
  user?: string;
};

/** What the agent copies in before the workload (the spec's mounts) and keeps after it (copyOut): workspace-in.ts, workspace-out.ts. */
export type VmWorkspace = {
  mounts: BindMount[];
  copyOut: string[];
};

/** An image VM run through the guest agent: its initramfs, the vsock, the relay, the workload. */
export type VmAgent = {
  /** The agent's initramfs: the VM's initrd, /init = vmctl-agent. */
  initrd: string;
  vsock: { guestCid: number; udsPath: string };
  /** The unix socket whose connections are relayed to the agent's vsock port (grpc-js dials it). */
  relaySocket: string;
  port: number;
  hostname: string;
  workload: VmWorkload;
  /** Absent when the spec has neither mounts nor copyOut (and in a vm.json from before them). */
  workspace?: VmWorkspace;
};

export type VmConfig = {
  vmId: string;
  kernel: string;
  bootArgs: string;
  initrd?: string;
  vcpus: number;
  memoryMib: number;
  /** In bus order: with an image, rootfs (/dev/vda) and scratch (/dev/vdb) come first. */
  drives: MicrovmDrive[];
  image?: VmImage;
  scratch?: VmScratch;
  agent?: VmAgent;
  /** The service's network (ctx.network at prepare): a NIC on its TAP, the settings in bootArgs. */
  network?: VmNetwork;
};

/** What `root=` the guest kernel gets with an image when the boot args name none. */
export const IMAGE_ROOT_ARGS = "root=/dev/vda ro";

/**
 * The VM of `spec` (defaults applied). With an image, `image` and `scratch` must be given:
 * the base disk becomes drive rootfs (read-only, the root device), the writable layer
 * drive scratch, both ahead of the user's drives; the boot args get {@link IMAGE_ROOT_ARGS}.
 * With `network`, the boot args carry its settings (vm-network.ts), for every kind of VM.
 */
export function vmConfig(vmId: string, spec: MicrovmSpec, resolved?: { image: VmImage; scratch: VmScratch; agent?: VmAgent }, network?: VmNetwork): VmConfig {
  const e = effective(spec);
  const bootArgs = network === undefined ? e.bootArgs : withKernelWords(e.bootArgs, networkBootWords(network));
  const base = {
    vmId,
    kernel: e.kernel,
    bootArgs,
    ...(e.initrd === undefined ? {} : { initrd: e.initrd }),
    vcpus: e.vcpus,
    memoryMib: e.memoryMib,
    ...(network === undefined ? {} : { network }),
  };
  if (e.image === undefined) return { ...base, drives: e.drives };
  if (resolved === undefined) throw new Error("vmConfig: a spec with an image needs the resolved image and its writable layer");
  const { image, scratch, agent } = resolved;
  return {
    ...base,
    bootArgs: agent === undefined ? withImageRoot(bootArgs) : agentBootArgs(bootArgs, agent),
    ...(agent === undefined ? {} : { initrd: agent.initrd, agent }),
    drives: [
      { id: IMAGE_DRIVE_IDS.rootfs, path: image.disk, readOnly: true, root: true },
      { id: IMAGE_DRIVE_IDS.scratch, path: scratch.path, readOnly: false },
      ...e.drives,
    ],
    image,
    scratch,
  };
}

/**
 * `bootArgs` with `words` added to its kernel part (before a `--`), in place of any
 * `vmctl.net=`/`vmctl.dns=` it had: the orchestrator's lease is the network's truth.
 */
export function withKernelWords(bootArgs: string, words: readonly string[]): string {
  const all = bootArgs.split(/\s+/).filter(Boolean);
  const end = all.indexOf("--");
  const kernelWords = (end < 0 ? all : all.slice(0, end)).filter((w) => !isNetworkBootWord(w));
  return [...kernelWords, ...words, ...(end < 0 ? [] : all.slice(end))].join(" ");
}

/**
 * `bootArgs` with {@link IMAGE_ROOT_ARGS} added, unless its kernel part already says
 * `root=`. Added before a `--` (what follows it is init's, not the kernel's).
 */
export function withImageRoot(bootArgs: string): string {
  const words = bootArgs.split(/\s+/).filter(Boolean);
  const end = words.indexOf("--");
  const kernelWords = end < 0 ? words : words.slice(0, end);
  if (kernelWords.some((w) => w.startsWith("root="))) return bootArgs;
  return [...kernelWords, IMAGE_ROOT_ARGS, ...(end < 0 ? [] : words.slice(end))].join(" ");
}

/**
 * The kernel part of `bootArgs` with {@link IMAGE_ROOT_ARGS}, the agent's initramfs init
 * (`rdinit=/init`), then the agent's own arguments: the two disks it assembles the root
 * from, the hostname, the vsock port it serves on. They are plain words, not after a
 * `--`: the VMM appends its `virtio_mmio.device=` declarations at the end of the command
 * line, and behind a `--` the kernel would not read them (and init would get them).
 * Linux hands every word it does not know, without `=` or `.`, to init as an argument,
 * in order; so the hostname is passed only when it has neither (and is not empty).
 * Words the user put after a `--` are dropped: the agent is init.
 */
export function agentBootArgs(bootArgs: string, agent: VmAgent): string {
  const words = withImageRoot(bootArgs).split(/\s+/).filter(Boolean);
  const end = words.indexOf("--");
  const kernelWords = (end < 0 ? words : words.slice(0, end)).filter((w) => !w.startsWith("rdinit=") && !w.startsWith("init="));
  const hostname = /^[A-Za-z0-9-]+$/.test(agent.hostname) ? ["--hostname", agent.hostname] : [];
  const agentArgs = ["--root-base", "/dev/vda", "--root-scratch", "/dev/vdb", ...hostname, "--listen", `vsock:${agent.port}`];
  return [...kernelWords, "rdinit=/init", ...agentArgs].join(" ");
}

/**
 * Reads vm.json back (written by this or an earlier version: one without an image has
 * neither `image` nor `scratch`). Anything else is INTERNAL naming the file.
 */
export function parseVmConfig(text: string, file: string): VmConfig {
  const bad = (why: string): VmctlError => new VmctlError("INTERNAL", `${file}: ${why}`);
  let v: Record<string, unknown>;
  try {
    v = JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new VmctlError("INTERNAL", `${file}: not JSON`, { cause: err });
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) throw bad("not an object");
  const isStr = (x: unknown): x is string => typeof x === "string";
  const isInt = (x: unknown): x is number => typeof x === "number" && Number.isSafeInteger(x) && x >= 0;
  if (!isStr(v.vmId) || !isStr(v.kernel) || !isStr(v.bootArgs) || !isInt(v.vcpus) || !isInt(v.memoryMib) || !Array.isArray(v.drives)) {
    throw bad("missing or mistyped vmId, kernel, bootArgs, vcpus, memoryMib or drives");
  }
  if (v.initrd !== undefined && !isStr(v.initrd)) throw bad("initrd is not a string");
  for (const d of v.drives as unknown[]) {
    const drive = d as Partial<MicrovmDrive> | null;
    if (drive === null || typeof drive !== "object" || !isStr(drive.id) || !isStr(drive.path)) throw bad("a drive without id or path");
  }
  const image = v.image as Partial<VmImage> | undefined;
  if (image !== undefined && (!isStr(image.reference) || !isStr(image.digest) || !isStr(image.disk) || !isInt(image.diskBytes))) {
    throw bad("image is not { reference, digest, disk, diskBytes }");
  }
  const scratch = v.scratch as Partial<VmScratch> | undefined;
  if (scratch !== undefined && (!isStr(scratch.path) || !isInt(scratch.sizeBytes))) throw bad("scratch is not { path, sizeBytes }");
  if ((image === undefined) !== (scratch === undefined)) throw bad("image and scratch go together");
  const agent = v.agent as Partial<VmAgent> | undefined;
  if (agent !== undefined) {
    const w = agent.workload as Partial<VmWorkload> | undefined;
    const strs = (x: unknown): boolean => Array.isArray(x) && x.every(isStr);
    if (image === undefined || !isStr(agent.initrd) || !isStr(agent.relaySocket) || !isInt(agent.port) || !isStr(agent.hostname)) throw bad("agent is incomplete");
    if (agent.vsock === undefined || !isInt(agent.vsock.guestCid) || !isStr(agent.vsock.udsPath)) throw bad("agent.vsock is not { guestCid, udsPath }");
    if (w === undefined || !strs(w.args) || !strs(w.imageEnv) || !strs(w.env)) throw bad("agent.workload is not { args, imageEnv, env }");
    const ws = agent.workspace as Partial<VmWorkspace> | undefined;
    const mounts = (x: unknown): boolean => Array.isArray(x) && x.every((m: Partial<BindMount> | null) => m !== null && typeof m === "object" && isStr(m.source) && isStr(m.destination));
    if (ws !== undefined && (!mounts(ws.mounts) || !strs(ws.copyOut))) throw bad("agent.workspace is not { mounts, copyOut }");
  }
  const n = v.network as Partial<VmNetwork> | null | undefined;
  if (n !== undefined) {
    const fields = [n?.hostDevice, n?.mac, n?.address, n?.gateway];
    if (n === null || typeof n !== "object" || !fields.every(isStr) || !isInt(n.prefixLength) || !isInt(n.mtu) || !Array.isArray(n.dns) || !n.dns.every(isStr)) {
      throw bad("network is not { hostDevice, mac, address, prefixLength, gateway, dns, mtu }");
    }
  }
  return v as VmConfig;
}

/** The VMM's fields (vmm/src/vmm_config) that stand for one field of the spec. */
const SPEC_FIELD_OF: Readonly<Record<string, string>> = {
  "machine_config.vcpu_count": "spec.vcpus",
  "machine_config.mem_size_mib": "spec.memoryMib",
  "boot_source.kernel_image_path": "spec.kernel",
  "boot_source.boot_args": "spec.bootArgs",
  "boot_source.initrd_path": "spec.initrd",
  // The NIC is made of the service's network (the orchestrator's lease), not of the spec.
  "network_interface.host_dev_name": "network",
  "network_interface.guest_mac": "network",
};
/** A field of the VMM's Drive → the same field of a spec drive ("" for the drive as a whole). */
const DRIVE_FIELD_OF: Readonly<Record<string, string>> = { "": "", drive_id: ".id", path_on_host: ".path", is_read_only: ".readOnly", is_root_device: ".root" };

/**
 * The inverse of vmConfig() for a refusal: the spec field that the VMM's `vmmField`
 * (`boot_source.kernel_image_path`, `drive.path_on_host`) stands for in `vm`: `spec.kernel`;
 * for a field of drive `driveId`, that field of the spec drive it was made from
 * (`spec.drives[1].path`), or `spec.image` for the image's rootfs and scratch. Undefined
 * when no spec field does (a drive field without `vm` or `driveId`).
 */
export function specField(vmmField: string, drive?: { vm: VmConfig; driveId: string }): string | undefined {
  const [resource, name = ""] = vmmField.split(/\.(.*)/s);
  if (resource !== "drive") return SPEC_FIELD_OF[vmmField];
  const suffix = DRIVE_FIELD_OF[name];
  const index = drive === undefined ? -1 : drive.vm.drives.findIndex((d) => d.id === drive.driveId);
  if (suffix === undefined || drive === undefined || index < 0) return undefined;
  // vmConfig() puts the image's drives first, then the spec's in order.
  const own = index - (drive.vm.image === undefined ? 0 : Object.keys(IMAGE_DRIVE_IDS).length);
  return own < 0 ? "spec.image" : `spec.drives[${own}]${suffix}`;
}
