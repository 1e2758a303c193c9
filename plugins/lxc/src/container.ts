// The LXC container itself, under the private lxcpath: its config written over a user's
// rootfs, or made by a template (lxc-create) with the service's block appended; a
// complete config ends with CONFIG_END_MARKER, so a half-made one is known and redone.
import { existsSync, readFileSync } from "node:fs";
import { appendFile, mkdir, rm, writeFile } from "node:fs/promises";
import type { Logger } from "@vmctl/core/contract";
import { writeAtomic } from "@vmctl/core/target-kit";
import { baseConfig, CONFIG_END_MARKER, rootfsConfig, serviceBlock, type ConfigOptions } from "./config.js";
import { canMountResolvConf, resolvConfText } from "./network.js";
import { makeMountPoints, rootfsOf } from "./rootfs.js";
import type { LxcSpec } from "./spec.js";
import type { LxcTools } from "./tools.js";

/** A template's lxc-create failed: the caller reports it on `spec.template`. */
export class TemplateFailed extends Error {}

export class LxcContainer {
  constructor(
    private readonly name: string,
    /** The container's directory under the lxcpath (config; a template's rootfs). */
    private readonly dir: string,
    private readonly spec: LxcSpec,
    private readonly tools: LxcTools,
    private readonly log: Logger,
    /** The template script's absolute path, for a template spec. */
    private readonly templatePath: string | undefined,
  ) {}

  get configFile(): string {
    return `${this.dir}/config`;
  }

  /** The root filesystem directory: the user's, or the one the template made (the config says where). */
  get rootfs(): string {
    return this.spec.rootfs ?? rootfsOf(this.configFile, this.dir);
  }

  /** The config is complete (a make() ran to its end). */
  complete(): boolean {
    try {
      return readFileSync(this.configFile, "utf8").includes(CONFIG_END_MARKER);
    } catch {
      return false;
    }
  }

  /**
   * Makes the container afresh (a half-made one is removed first); `workDir` holds the
   * template's base config and, on a network with resolvers, the resolv.conf mounted over
   * the container's (when its rootfs allows: network.ts), written before the config names it.
   */
  async make(opts: ConfigOptions, workDir: string): Promise<void> {
    await this.remove();
    const spec = this.spec;
    const dns = opts.network?.dns ?? [];
    const withDns = async (rootfs: string): Promise<ConfigOptions> => {
      const file = `${workDir}/resolv.conf`;
      // An fstab line: a path with whitespace cannot be written into lxc.mount.entry.
      if (/\s/.test(file) || !canMountResolvConf(rootfs, spec, dns)) {
        if (dns.length > 0) this.log.info("lxc: the network's resolvers are not mounted over this rootfs's /etc/resolv.conf (a symlink, a spec mount, or not a plain file)", { name: this.name });
        return opts;
      }
      await writeFile(file, resolvConfText(dns));
      return { ...opts, resolvConf: file };
    };
    let mountFiles: string[] = [];
    if (spec.rootfs !== undefined) {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      const full = await withDns(spec.rootfs);
      if (full.resolvConf !== undefined) mountFiles = ["/etc/resolv.conf"];
      writeAtomic(this.configFile, rootfsConfig({ ...spec, rootfs: spec.rootfs }, full));
    } else {
      const base = `${workDir}/base.conf`;
      await writeFile(base, baseConfig(opts));
      try {
        await this.tools.create(this.name, this.templatePath!, base, spec.templateArgs ?? []);
      } catch (err) {
        // Nothing half-made stays on the target: the template's partial rootfs goes too.
        await this.remove().catch(() => undefined);
        throw new TemplateFailed((err as Error).message, { cause: err });
      }
      const full = await withDns(rootfsOf(this.configFile, this.dir));
      if (full.resolvConf !== undefined) mountFiles = ["/etc/resolv.conf"];
      await appendFile(this.configFile, `\n${serviceBlock(spec, full)}`);
    }
    await makeMountPoints(rootfsOf(this.configFile, this.dir), spec, mountFiles);
  }

  /**
   * Removes the container's directory. A template made its rootfs, so lxc-destroy removes
   * both; over a user's rootfs only our dir goes: lxc-destroy would delete the user's
   * rootfs directory too (it does for every `dir:` rootfs).
   */
  async remove(): Promise<void> {
    if (!existsSync(this.dir)) return;
    if (this.spec.template !== undefined && existsSync(this.configFile)) {
      try {
        await this.tools.destroy(this.name);
      } catch (err) {
        this.log.warn("lxc-destroy failed; removing the container dir", { name: this.name, error: String(err) });
      }
    }
    await rm(this.dir, { recursive: true, force: true });
  }
}
