// The lxc target: validates specs and makes controllers over one private lxcpath.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { VmctlError } from "@vmctl/core/contract";
import type { Capabilities, ControllerRecord, Logger, OwnedThing, RunInput, ServiceFactory, TargetContext } from "@vmctl/core/contract";
import { mountsFromRun } from "@vmctl/core/target-kit";
import type { CgroupVersion } from "./config.js";
import { LxcController } from "./controller.js";
import { containerDir, containerNameFor, serviceLayout } from "./layout.js";
import { ownedContainers, removeOwnedContainer } from "./owned.js";
import { parseLxcSpec, type LxcSpec } from "./spec.js";
import type { LxcTools } from "./tools.js";

export interface LxcFactoryOptions {
  readonly tools: LxcTools;
  /** Where `lxc-<name>` template scripts live (Debian: /usr/share/lxc/templates). */
  readonly templatesDir: string;
  /** LXC's shared defaults to include in every config, when installed. */
  readonly commonConf?: string | undefined;
  readonly cgroup: CgroupVersion;
  readonly log: Logger;
  /**
   * Where the old bridge networking kept its address files (`<stateDir>/addresses`), so
   * a service made before it moved to the orchestrator's networks is still cleaned up.
   */
  readonly legacyAddresses: string;
}

export class LxcFactory implements ServiceFactory<LxcSpec> {
  readonly target = "lxc";
  readonly capabilities: Capabilities;
  readonly #o: LxcFactoryOptions;

  constructor(options: LxcFactoryOptions) {
    this.#o = options;
    const bin = options.tools.bin;
    // Claimed only when the tool that delivers it is installed. network needs LXC alone:
    // the orchestrator makes the bridge and rules, LXC the veth (lxc.net.0 in the config).
    this.capabilities = {
      exec: bin.attach !== undefined,
      pause: bin.freeze !== undefined && bin.unfreeze !== undefined,
      network: true,
      volumes: true,
      logsFollow: true,
      // Read on the host (the kit's packContainerPath): no LXC tool needed.
      copy: true,
    };
  }

  /** The private lxcpath (`-P`) every container of this target lives under. */
  get lxcpath(): string {
    return this.#o.tools.lxcpath;
  }

  validate(spec: unknown): LxcSpec {
    return parseLxcSpec(spec);
  }

  /** `vmctl run ROOTFS -- CMD...`: the image is the rootfs directory, the command its args. */
  specFromRun(input: RunInput): unknown {
    const env = { ...(input.spec.env as Record<string, string> | undefined), ...input.env };
    return {
      ...(input.image === undefined ? {} : { rootfs: input.image }),
      ...(input.command.length > 0 ? { args: input.command } : {}),
      ...input.spec,
      ...(Object.keys(env).length > 0 ? { env } : {}),
      ...mountsFromRun(input),
    };
  }

  /** The template script for a template name, or undefined when it is not installed. */
  templatePath(name: string): string | undefined {
    const path = join(this.#o.templatesDir, `lxc-${name}`);
    return existsSync(path) ? path : undefined;
  }

  async create(id: string, spec: LxcSpec, ctx: TargetContext): Promise<LxcController> {
    let templatePath: string | undefined;
    if (spec.template !== undefined) {
      templatePath = this.templatePath(spec.template);
      // Refused before anything is made: a missing template is the user's to fix.
      if (templatePath === undefined) {
        throw new VmctlError(
          "NOT_FOUND",
          `spec.template: LXC template "${spec.template}" is not installed (no ${join(this.#o.templatesDir, `lxc-${spec.template}`)})`,
          { details: { field: "spec.template", serviceId: id, target: "lxc" } },
        );
      }
    }
    if (spec.template !== undefined && (this.#o.tools.bin.create === undefined || this.#o.tools.bin.destroy === undefined)) {
      throw new VmctlError("FAILED_PRECONDITION", "spec.template: lxc-create and lxc-destroy are not installed on this host", {
        details: { field: "spec.template", serviceId: id, target: "lxc" },
      });
    }
    return this.#controller(id, spec, ctx, templatePath, false);
  }

  /** Containers under the lxcpath labelled with `owner` (owned.ts). */
  owned(owner: string): Promise<OwnedThing[]> {
    return ownedContainers(this.#o.tools, owner);
  }

  removeOwned(thing: OwnedThing): Promise<void> {
    return removeOwnedContainer(this.#o.tools, this.#o.legacyAddresses, thing);
  }

  async adopt(record: ControllerRecord, ctx: TargetContext): Promise<LxcController | undefined> {
    // The spec was validated at create; its rootfs or template may be gone now, which must not stop cleanup.
    const spec = record.spec as LxcSpec;
    const name = containerNameFor(record.id);
    const layout = serviceLayout(ctx.serviceDir);
    const resources = [...record.resources, ...ctx.resources.list()];
    if (resources.length === 0 && !existsSync(layout.runDir) && !existsSync(containerDir(this.lxcpath, name))) return undefined;
    const startRequested = resources.some((r) => r.kind === "process" && r.key === `shim:${name}`);
    this.#o.log.debug("lxc adopting", { serviceId: record.id, name, startRequested });
    const templatePath = spec.template === undefined ? undefined : this.templatePath(spec.template);
    return this.#controller(record.id, spec, ctx, templatePath, startRequested);
  }

  #controller(id: string, spec: LxcSpec, ctx: TargetContext, templatePath: string | undefined, startRequested: boolean): LxcController {
    const name = containerNameFor(id);
    return new LxcController({
      id,
      spec,
      ctx,
      tools: this.#o.tools,
      name,
      containerDir: containerDir(this.lxcpath, name),
      layout: serviceLayout(ctx.serviceDir),
      templatePath,
      commonConf: this.#o.commonConf,
      cgroup: this.#o.cgroup,
      legacyAddresses: this.#o.legacyAddresses,
      startRequested,
    });
  }
}
