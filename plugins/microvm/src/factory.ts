// The microvm target: validates specs and makes controllers, one vmctl-vmm process per
// service. Thin: the lifecycle lives in controller.ts.
import { existsSync } from "node:fs";
import { ValidationError } from "@vmctl/core/contract";
import type { Capabilities, ControllerRecord, Logger, OwnedThing, RunInput, ServiceFactory, TargetContext } from "@vmctl/core/contract";
import { mountsFromRun } from "@vmctl/core/target-kit";
import { MicrovmController } from "./controller.js";
import { kernelCacheDir } from "./kernel-cache.js";
import { agentSocketsFor, perVmFiles, recordedVmm, serviceLayout, socketPathFor, vmIdFor } from "./layout.js";
import { ownedVmms, removeOwnedVmm } from "./owned.js";
import { parseMicrovmSpec, type MicrovmSpec } from "./spec.js";

/**
 * What the target can do. pause: the VMM's Pause/Resume. exec: through the guest agent,
 * for image VMs it runs (a kernel-only VM refuses exec with FAILED_PRECONDITION).
 * network: the service's network as a virtio-net NIC on a TAP of its bridge; the guest
 * agent configures the guest's side (vm-network.ts; a kernel-only VM's own init does,
 * from the same kernel command-line words). volumes: host paths (the spec's
 * `mounts`, `-v`) are copied into an image VM before its workload starts, through the
 * agent — a copy, not a mount: changes in the VM never reach the host (a kernel-only VM
 * refuses `mounts`). copy: copyOut() through the agent while the VM runs, and the
 * spec's `copyOut` paths after it has powered off (workload.ts).
 */
export const MICROVM_CAPABILITIES: Capabilities = {
  exec: true,
  pause: true,
  network: true,
  volumes: true,
  logsFollow: true,
  copy: true,
};

/** The kernel command line when the spec gives none: serial console, reboot = exit. */
export const DEFAULT_BOOT_ARGS = "console=ttyS0 reboot=k panic=1";
/**
 * The same for an image run by the guest agent, `quiet`: the workload's output is the
 * service's logs, the console only the kernel's warnings (a boot printing every line
 * through the emulated UART takes seconds longer).
 */
export const DEFAULT_AGENT_BOOT_ARGS = `${DEFAULT_BOOT_ARGS} quiet`;

function withDefaultBootArgs(spec: MicrovmSpec): MicrovmSpec {
  if (spec.bootArgs !== undefined) return spec;
  return { ...spec, bootArgs: spec.agent ? DEFAULT_AGENT_BOOT_ARGS : DEFAULT_BOOT_ARGS };
}

/**
 * The run's `-v` mounts after the spec's own (the kit's rule, as every target), and its
 * `--copy-out` paths after the spec's: the caller will copy those out after the exit, so
 * they must be kept whatever the spec says. {} when the run has neither. A spec field that
 * is no list is left for validate() to refuse.
 */
function runCopies(input: RunInput): { mounts?: unknown; copyOut?: unknown } {
  // `?? []`: a caller built before these fields leaves them out.
  const run = { mounts: input.mounts ?? [], copyOut: input.copyOut ?? [], spec: input.spec };
  const explicit = input.spec.copyOut;
  const copyOut = run.copyOut.length === 0 ? {} : { copyOut: Array.isArray(explicit) ? [...(explicit as unknown[]), ...run.copyOut] : (explicit ?? [...run.copyOut]) };
  return { ...mountsFromRun(run), ...copyOut };
}

export interface MicrovmFactoryOptions {
  /** The vmctl-vmm binary. */
  readonly binary: string;
  /** The target's own state dir (short socket paths go under it when a serviceDir is too deep). */
  readonly stateDir: string;
  readonly log: Logger;
  /** The kernel cache a spec without `kernel` boots the default of (default: `$VMCTL_KERNEL_CACHE`, then /var/cache/vmctl/kernel). */
  readonly kernelCache?: string;
}

export class MicrovmFactory implements ServiceFactory<MicrovmSpec> {
  readonly target = "microvm";
  readonly capabilities = MICROVM_CAPABILITIES;
  readonly binary: string;
  readonly #stateDir: string;
  readonly #log: Logger;
  readonly #kernelCache: string;
  readonly #controllers = new Set<MicrovmController>();

  constructor(options: MicrovmFactoryOptions) {
    this.binary = options.binary;
    this.#stateDir = options.stateDir;
    this.#log = options.log;
    this.#kernelCache = options.kernelCache ?? kernelCacheDir();
  }

  /**
   * Read at each create, not once: a kernel built while the daemon runs is found. Checked
   * against the limits of the binary this factory spawns (asked once per binary).
   */
  validate(spec: unknown): MicrovmSpec {
    return parseMicrovmSpec(spec, { kernelCache: this.#kernelCache, vmm: this.binary });
  }

  /**
   * `vmctl run --target microvm IMAGE -- WORDS...`: an IMAGE that is an absolute path is
   * the kernel (as before images existed), the command words (and env as KEY=VALUE words,
   * which Linux hands to init's environment) appended to the boot arguments. Anything
   * else is an image reference (`spec.image`): on the default kernel (no `spec.kernel`,
   * no `agent: false`) the guest agent runs it, the words are the workload's `args` and
   * env its `env`; with a kernel of the spec's, the words go on the command line as
   * before. Explicit spec fields win; spec.bootArgs replaces the default. The run's
   * mounts and copyOut are added to the spec's own (runCopies; only an image VM's agent
   * can copy: on any other VM the spec then refuses them, naming the field).
   */
  specFromRun(input: RunInput): unknown {
    const from = input.image === undefined ? {} : input.image.startsWith("/") ? { kernel: input.image } : { image: input.image };
    const image = input.spec.image ?? (input.image?.startsWith("/") ? undefined : input.image);
    if (image !== undefined && input.spec.kernel === undefined && input.spec.agent !== false) {
      const env = { ...(input.spec.env as Record<string, string> | undefined), ...input.env };
      return {
        ...from,
        ...(input.command.length > 0 ? { args: input.command } : {}),
        ...input.spec,
        ...(Object.keys(env).length > 0 ? { env } : {}),
        ...runCopies(input),
      };
    }
    const env = Object.entries(input.env).map(([key, value]) => {
      if (/\s/.test(value)) throw new ValidationError(`env.${key}`, "a kernel command-line word cannot contain whitespace");
      return `${key}=${value}`;
    });
    const words = [...env, ...input.command];
    const base = typeof input.spec.bootArgs === "string" ? input.spec.bootArgs : DEFAULT_BOOT_ARGS;
    return {
      ...from,
      ...input.spec,
      ...(words.length > 0 || input.spec.bootArgs === undefined ? { bootArgs: [base, ...words].filter(Boolean).join(" ") } : {}),
      ...runCopies(input),
    };
  }

  async create(id: string, spec: MicrovmSpec, ctx: TargetContext): Promise<MicrovmController> {
    const withDefaults = withDefaultBootArgs(spec);
    return this.#track(
      new MicrovmController({
        id,
        spec: withDefaults,
        ctx,
        binary: this.binary,
        layout: serviceLayout(ctx.serviceDir, socketPathFor(ctx.serviceDir, this.#stateDir), agentSocketsFor(ctx.serviceDir, this.#stateDir)),
        vmId: vmIdFor(id),
        onDestroyed: (c) => this.#controllers.delete(c),
      }),
    );
  }

  async adopt(record: ControllerRecord, ctx: TargetContext): Promise<MicrovmController | undefined> {
    // The spec was validated at create; its kernel may be gone now, which must not stop cleanup.
    const spec = record.spec as MicrovmSpec;
    const resources = [...record.resources, ...ctx.resources.list()];
    const vmm = recordedVmm(resources, record.id);
    const data = (record.data ?? {}) as { socket?: unknown };
    const socket = vmm?.socket ?? (typeof data.socket === "string" ? data.socket : socketPathFor(ctx.serviceDir, this.#stateDir));
    const layout = serviceLayout(ctx.serviceDir, socket, agentSocketsFor(ctx.serviceDir, this.#stateDir));
    const leftovers = [socket, layout.vsockPath, layout.relayPath, layout.capturedDir, ...perVmFiles(layout)].some((p) => existsSync(p));
    if (resources.length === 0 && !leftovers) return undefined;
    const controller = new MicrovmController({
      id: record.id,
      spec: withDefaultBootArgs(spec),
      ctx,
      binary: this.binary,
      layout,
      vmId: vmIdFor(record.id),
      onDestroyed: (c) => this.#controllers.delete(c),
    });
    await controller.reattach(vmm);
    this.#log.debug("microvm adopted", { serviceId: record.id, pid: controller.vmmProcess?.pid });
    return this.#track(controller);
  }

  /** The VMM processes labelled with `owner` (owned.ts). */
  owned(owner: string): Promise<OwnedThing[]> {
    return ownedVmms(owner);
  }

  removeOwned(thing: OwnedThing): Promise<void> {
    return removeOwnedVmm(thing);
  }

  /** Orchestrator shutdown: stop following; every VM keeps running and is adopted next time. */
  async close(): Promise<void> {
    const all = [...this.#controllers];
    this.#controllers.clear();
    await Promise.all(all.map((c) => c.detach()));
  }

  #track(c: MicrovmController): MicrovmController {
    this.#controllers.add(c);
    return c;
  }
}
