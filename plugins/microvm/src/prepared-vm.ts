// prepare(): the VM as start() will boot it, written down once (vm.json) so adopt knows the
// service was made and a restart boots what was prepared. With an image, the image store
// resolves and pins it and the VM's writable layer is made; with a network, its TAP is
// made (vm-network.ts); each file and device is recorded in the ledger before it is made.
import { existsSync, readFileSync, statSync } from "node:fs";
import { VmctlError, type ProgressSink, type TargetContext } from "@vmctl/core/contract";
import { hostnameFor, writeAtomic } from "@vmctl/core/target-kit";
import type { ImageRecord } from "@vmctl/core/contract";
import { requireAgentInitramfs } from "./agent-files.js";
import { errorDetails } from "./errors.js";
import { ledger, type ServiceLayout } from "./layout.js";
import { DEFAULT_DISK_SIZE_MIB, type MicrovmSpec } from "./spec.js";
import { MIB, parseVmConfig, vmConfig, type VmAgent, type VmConfig, type VmImage, type VmScratch } from "./vm-config.js";
import { ensureTap, vmNetworkOf } from "./vm-network.js";

/** The guest's vsock CID (3: the first one not reserved) and the agent's port. */
export const AGENT_GUEST_CID = 3;
export const AGENT_PORT = 1024;

export interface VmToPrepare {
  readonly serviceId: string;
  readonly vmId: string;
  readonly spec: MicrovmSpec;
  readonly ctx: TargetContext;
  readonly layout: ServiceLayout;
}

/**
 * The VM to boot. Checks first that the host files (and mount sources) the spec names
 * are there. Once vm.json exists (`prepared`: made here or by an earlier process) it is
 * the VM and nothing is resolved again: only its image's base disk is checked and a vanished writable layer
 * remade. Otherwise the image is resolved (pulling if needed, with `progress`), the
 * writable layer made and vm.json written. Either way, on a network, the TAP is made
 * (again, if it vanished) before anything boots on it: the orchestrator applies the
 * host rules to it once prepare is done.
 */
export async function prepareVm(vm: VmToPrepare, prepared: () => VmConfig | undefined, progress?: ProgressSink): Promise<VmConfig> {
  const files = [
    ["kernel", vm.spec.kernel],
    ...(vm.spec.initrd === undefined ? [] : [["initrd", vm.spec.initrd]]),
    ...(vm.spec.drives ?? []).map((d, i) => [`drives[${i}].path`, d.path]),
  ];
  for (const [field, path] of files) {
    if (!isFile(path as string)) throw gone(vm.serviceId, field as string, path as string);
  }
  // Before a VM is booted for nothing: a mount's source is copied in only after the boot.
  for (const [i, mount] of (vm.spec.mounts ?? []).entries()) {
    if (!existsSync(mount.source)) throw new VmctlError("FAILED_PRECONDITION", `mounts[${i}].source: ${mount.source} is not there any more`, { details: errorDetails(vm.serviceId) });
  }
  const existing = prepared();
  if (existing !== undefined) {
    if (existing.image !== undefined && existing.scratch !== undefined) {
      if (!isFile(existing.image.disk)) throw gone(vm.serviceId, "image", `${existing.image.disk} (the base disk of ${existing.image.digest})`);
      await makeScratch(vm.ctx, existing.scratch);
    }
    if (existing.network !== undefined) await ensureTap(vm.ctx, vm.serviceId, existing.network);
    return existing;
  }
  let resolved: { image: VmImage; scratch: VmScratch; agent?: VmAgent } | undefined;
  if (vm.spec.image !== undefined) {
    const record = await vm.ctx.images.use(vm.spec.image, progress);
    const image: VmImage = { reference: vm.spec.image, digest: record.digest, disk: record.disk, diskBytes: record.diskBytes };
    const scratch: VmScratch = { path: vm.layout.scratchFile, sizeBytes: (vm.spec.diskSizeMib ?? DEFAULT_DISK_SIZE_MIB) * MIB };
    const agent = vm.spec.agent ? agentOf(vm, record) : undefined;
    await makeScratch(vm.ctx, scratch);
    resolved = { image, scratch, ...(agent === undefined ? {} : { agent }) };
    vm.ctx.log.debug("microvm image prepared", { image: image.reference, digest: image.digest, disk: image.disk });
  }
  const network = vm.ctx.network === undefined ? undefined : vmNetworkOf(vm.ctx.network.attachment);
  const config = vmConfig(vm.vmId, vm.spec, resolved, network);
  vm.ctx.resources.intend(ledger.file(vm.layout.vmFile));
  writeAtomic(vm.layout.vmFile, `${JSON.stringify(config, null, 2)}\n`);
  if (network !== undefined) await ensureTap(vm.ctx, vm.serviceId, network);
  return config;
}

/**
 * The agent's side of an image VM: its initramfs, the vsock and relay sockets, the
 * workload — the spec's command, env, cwd and user over the image config's — and what is
 * copied in before it and kept after it (the spec's mounts and copyOut).
 */
function agentOf(vm: VmToPrepare, image: ImageRecord): VmAgent {
  const c = image.config;
  const args = vm.spec.args ?? [...c.entrypoint, ...c.cmd];
  if (args.length === 0) {
    throw new VmctlError("FAILED_PRECONDITION", `args: the image ${vm.spec.image} names no command (no Entrypoint or Cmd): give one`, { details: errorDetails(vm.serviceId) });
  }
  const cwd = vm.spec.cwd ?? (c.workingDir || undefined);
  const user = vm.spec.user ?? (c.user || undefined);
  const mounts = vm.spec.mounts ?? [];
  const copyOut = vm.spec.copyOut ?? [];
  return {
    initrd: requireAgentInitramfs(),
    vsock: { guestCid: AGENT_GUEST_CID, udsPath: vm.layout.vsockPath },
    relaySocket: vm.layout.relayPath,
    port: AGENT_PORT,
    hostname: hostnameFor(vm.serviceId),
    workload: {
      args,
      imageEnv: [...c.env],
      env: Object.entries(vm.spec.env ?? {}).map(([k, v]) => `${k}=${v}`),
      ...(cwd === undefined ? {} : { cwd }),
      ...(user === undefined ? {} : { user }),
    },
    ...(mounts.length + copyOut.length === 0 ? {} : { workspace: { mounts, copyOut } }),
  };
}

/** vm.json as prepareVm() wrote it; undefined before that. A broken file is INTERNAL. */
export function readVmFile(vmFile: string): VmConfig | undefined {
  let text: string;
  try {
    text = readFileSync(vmFile, "utf8");
  } catch {
    return undefined;
  }
  return parseVmConfig(text, vmFile);
}

/**
 * The VM's writable layer, unless it exists: ledger first, then made (a few ms: sparse,
 * pre-formatted; the engine clears a partial file an interrupted attempt left).
 */
async function makeScratch(ctx: TargetContext, scratch: VmScratch): Promise<void> {
  if (existsSync(scratch.path)) return;
  ctx.resources.intend(ledger.file(scratch.path));
  await ctx.images.createWritableLayer(scratch.path, scratch.sizeBytes);
}

function gone(serviceId: string, field: string, path: string): VmctlError {
  return new VmctlError("FAILED_PRECONDITION", `${field}: ${path} is not a file any more`, { details: errorDetails(serviceId) });
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
