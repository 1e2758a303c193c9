// The oci target: validates specs and makes controllers over a set of installed runtimes.
import { existsSync } from "node:fs";
import { VmctlError, ValidationError } from "@vmctl/core/contract";
import type { Capabilities, ControllerRecord, Logger, OwnedThing, RunInput, ServiceFactory, TargetContext } from "@vmctl/core/contract";
import { mountsFromRun } from "@vmctl/core/target-kit";
import { OciController } from "./controller.js";
import { containerIdFor, serviceLayout } from "./layout.js";
import { ownedContainers, removeOwnedContainer } from "./owned.js";
import type { OciRuntime } from "./runtime.js";
import { parseOciSpec, type OciRuntimeName, type OciSpec } from "./spec.js";

export const OCI_CAPABILITIES: Capabilities = {
  exec: true,
  pause: true,
  network: false,
  volumes: true,
  logsFollow: true,
  copy: true,
};

export class OciFactory implements ServiceFactory<OciSpec> {
  readonly target = "oci";
  readonly capabilities = OCI_CAPABILITIES;
  readonly #runtimes: ReadonlyMap<OciRuntimeName, OciRuntime>;
  readonly #log: Logger;

  /** `runtimes`: the installed runtimes by name, each with its own `--root` under the target's state dir. */
  constructor(runtimes: ReadonlyMap<OciRuntimeName, OciRuntime>, log: Logger) {
    this.#runtimes = runtimes;
    this.#log = log;
  }

  /** The runtime a spec runs on. */
  runtimeFor(spec: OciSpec): OciRuntime {
    const name = spec.runtime ?? "runc";
    const runtime = this.#runtimes.get(name);
    if (!runtime) throw new ValidationError("runtime", `${name} is not installed on this host`);
    return runtime;
  }

  validate(spec: unknown): OciSpec {
    const parsed = parseOciSpec(spec);
    this.runtimeFor(parsed);
    return parsed;
  }

  /** `vmctl run ROOTFS -- CMD...`: the image is the rootfs directory, the command its args. */
  specFromRun(input: RunInput): unknown {
    const env = { ...(input.spec.env as Record<string, string> | undefined), ...input.env };
    return {
      ...(input.image === undefined ? {} : { rootfs: input.image }),
      ...(input.command.length > 0 ? { args: input.command } : {}),
      ...(Object.keys(env).length > 0 ? { env } : {}),
      ...input.spec,
      ...(Object.keys(env).length > 0 ? { env } : {}),
      ...mountsFromRun(input),
    };
  }

  async create(id: string, spec: OciSpec, ctx: TargetContext): Promise<OciController> {
    return new OciController({
      id,
      spec,
      ctx,
      runtime: this.runtimeFor(spec),
      containerId: containerIdFor(id),
      layout: serviceLayout(ctx.serviceDir),
    });
  }

  /** Containers under the runtimes' roots annotated with `owner` (owned.ts). */
  owned(owner: string): Promise<OwnedThing[]> {
    return ownedContainers(this.#runtimes.values(), owner);
  }

  removeOwned(thing: OwnedThing): Promise<void> {
    return removeOwnedContainer(this.#runtimes, thing);
  }

  async adopt(record: ControllerRecord, ctx: TargetContext): Promise<OciController | undefined> {
    // The spec was validated at create; its rootfs may be gone now, which must not stop cleanup.
    const spec = record.spec as OciSpec;
    const layout = serviceLayout(ctx.serviceDir);
    const resources = [...record.resources, ...ctx.resources.list()];
    const containerId = containerIdFor(record.id);
    if (resources.length === 0 && !existsSync(layout.bundleDir) && !existsSync(layout.runDir)) return undefined;
    const runtime = this.#runtimes.get(spec.runtime ?? "runc");
    if (!runtime) {
      throw new VmctlError("FAILED_PRECONDITION", `cannot adopt ${record.id}: ${spec.runtime} is no longer installed`, {
        details: { serviceId: record.id, target: "oci" },
      });
    }
    const startRequested = resources.some((r) => r.kind === "process" && r.key === `shim:${containerId}`);
    this.#log.debug("oci adopting", { serviceId: record.id, containerId, startRequested });
    return new OciController({ id: record.id, spec, ctx, runtime, containerId, layout, startRequested });
  }
}
