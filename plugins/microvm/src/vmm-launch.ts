// Launching a service's VM, as one recipe in the order that keeps a crash at any point
// recoverable: the ledger names what is about to exist, the detached VMM is spawned and
// recorded (pid + start time), its API awaited, the machine configured from vm.json, the
// console followed, and only then the VM started.
import { mkdirSync, rmSync } from "node:fs";
import { dirname } from "node:path";
import type { TargetContext } from "@vmctl/core/contract";
import { writeAtomic } from "@vmctl/core/target-kit";
import type { VmmClient } from "@vmctl/vmm-client";
import { ledger, type ServiceLayout } from "./layout.js";
import type { VmConfig } from "./vm-config.js";
import { NIC_ID } from "./vm-network.js";
import type { VmFollower } from "./vm-follower.js";
import { RPC } from "./vmm-connection.js";
import { inSpecTerms } from "./vmm-refusal.js";
import { spawnVmmDetached, type ProcessRef } from "./vmm-process.js";

/** How long a freshly spawned VMM gets to answer its API. */
const READY_TIMEOUT_MS = 30_000;

export interface VmmLaunch {
  readonly serviceId: string;
  readonly vmId: string;
  readonly binary: string;
  readonly ctx: TargetContext;
  readonly layout: ServiceLayout;
}

/** Recorded before they exist, so whatever happens next they can be found and freed. */
export function intendLaunch(launch: VmmLaunch, vm?: VmConfig): void {
  const { layout: l, ctx } = launch;
  if (vm?.agent) {
    for (const path of [vm.agent.vsock.udsPath, vm.agent.relaySocket]) {
      if (dirname(path) !== l.serviceDir) mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      ctx.resources.intend(ledger.socket(path));
      rmSync(path, { force: true });
    }
  }
  if (dirname(l.socketPath) !== l.serviceDir) mkdirSync(dirname(l.socketPath), { recursive: true, mode: 0o700 });
  ctx.resources.intend(ledger.file(l.consoleFile));
  ctx.resources.intend(ledger.file(l.vmmLogFile));
  ctx.resources.intend(ledger.socket(l.socketPath));
  ctx.resources.intend(ledger.vmm(launch.serviceId, l.socketPath));
  rmSync(l.socketPath, { force: true });
}

/**
 * After intendLaunch(): spawns the VMM (told to `spawned` at once, so a later failure can
 * stop it), configures the VM and starts it, followed by `follower` from before its first
 * instruction runs.
 */
export async function launchVm(launch: VmmLaunch, vm: VmConfig, follower: VmFollower, spawned: (ref: ProcessRef) => void): Promise<void> {
  const ref = await spawnVmm(launch);
  spawned(ref);
  recordVmm(launch, ref);
  const conn = follower.connect();
  await conn.whenReady(ref, READY_TIMEOUT_MS, launch.layout.vmmLogFile, launch.serviceId);
  await configureVm(conn.client, vm);
  follower.follow();
  await inSpecTerms(conn.client.start(RPC), vm);
}

/** vmctl-vmm, detached, labelled with the service's owner labels (for reapers). */
function spawnVmm(launch: VmmLaunch): Promise<ProcessRef> {
  const l = launch.layout;
  return spawnVmmDetached({
    binary: launch.binary,
    socketPath: l.socketPath,
    vmId: launch.vmId,
    logFile: l.vmmLogFile,
    cwd: l.serviceDir,
    labels: launch.ctx.ownerLabels,
  });
}

/** The spawned VMM's pid and start time, in the ledger and in vmm.json, so adopt finds this very process. */
function recordVmm(launch: VmmLaunch, ref: ProcessRef): void {
  const l = launch.layout;
  launch.ctx.resources.intend(ledger.vmm(launch.serviceId, l.socketPath, ref));
  writeAtomic(l.vmmFile, `${JSON.stringify({ pid: ref.pid, startTime: ref.startTime, socket: l.socketPath })}\n`);
  launch.ctx.log.debug("vmctl-vmm started", { pid: ref.pid, socket: l.socketPath });
}

/**
 * The machine, boot source, drives and NIC, from vm.json alone (a restart boots what
 * was prepared); a refusal names the spec's field.
 */
async function configureVm(client: VmmClient, vm: VmConfig): Promise<void> {
  await inSpecTerms(client.putMachineConfig({ vcpuCount: vm.vcpus, memSizeMib: vm.memoryMib }, RPC), vm);
  const boot = { kernelImagePath: vm.kernel, bootArgs: vm.bootArgs, ...(vm.initrd === undefined ? {} : { initrdPath: vm.initrd }) };
  await inSpecTerms(client.putBootSource(boot, RPC), vm);
  // In vm.json's order: with an image, rootfs (/dev/vda) and scratch (/dev/vdb) first.
  for (const d of vm.drives) {
    const drive = { driveId: d.id, pathOnHost: d.path, isReadOnly: d.readOnly ?? false, isRootDevice: d.root ?? false };
    await inSpecTerms(client.putDrive(drive, RPC), vm, d.id);
  }
  // The guest agent's way in: after the drives (the vsock takes the slot after them).
  if (vm.agent) await inSpecTerms(client.putVsock(vm.agent.vsock, RPC), vm);
  // The TAP was made at prepare (and again at this start if it had vanished): opened by name.
  if (vm.network) await inSpecTerms(client.putNetworkInterface({ ifaceId: NIC_ID, hostDevName: vm.network.hostDevice, guestMac: vm.network.mac }, RPC), vm);
}
