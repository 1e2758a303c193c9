// Reading and checking a plugin package's package.json: the `vmctl` field and engines.vmctl.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import semver from "semver";
import { CONTRACT_VERSION, type PluginManifest } from "../contract/plugin.js";
import { VmctlError } from "../errors.js";

export interface PluginPackage {
  /** The package name ("vmctl-plugin-oci", "@acme/vmctl-plugin-x"). */
  readonly name: string;
  readonly version: string;
  /** The package root directory. */
  readonly dir: string;
  readonly manifest: PluginManifest;
  /** The engines.vmctl range the plugin accepts. */
  readonly engines: string;
}

/** Reads `dir/package.json`, checks its `vmctl` field and that engines.vmctl accepts CONTRACT_VERSION. */
export async function readPluginPackage(dir: string): Promise<PluginPackage> {
  const file = join(dir, "package.json");
  let pkg: Record<string, unknown>;
  try {
    pkg = JSON.parse(await readFile(file, "utf8")) as Record<string, unknown>;
  } catch (err) {
    throw pluginError(dir, `cannot read ${file}: ${(err as Error).message}`, err);
  }
  const name = typeof pkg.name === "string" && pkg.name !== "" ? pkg.name : dir;
  const version = typeof pkg.version === "string" ? pkg.version : "0.0.0";

  const field = pkg.vmctl as { entry?: unknown; targets?: unknown } | undefined;
  if (typeof field !== "object" || field === null) {
    throw pluginError(name, `package.json has no "vmctl" field ({ "entry": "...", "targets": [...] })`);
  }
  if (typeof field.entry !== "string" || field.entry === "") {
    throw pluginError(name, `package.json "vmctl.entry" must name the module exporting the plugin`);
  }
  if (
    !Array.isArray(field.targets) ||
    field.targets.length === 0 ||
    !field.targets.every((t): t is string => typeof t === "string" && t !== "")
  ) {
    throw pluginError(name, `package.json "vmctl.targets" must list the target names the plugin registers`);
  }

  const engines = (pkg.engines as Record<string, unknown> | undefined)?.vmctl;
  if (typeof engines !== "string" || semver.validRange(engines) === null) {
    throw pluginError(name, `package.json "engines.vmctl" must be a semver range of the contract versions it supports`);
  }
  if (!semver.satisfies(CONTRACT_VERSION, engines, { includePrerelease: true })) {
    throw pluginError(
      name,
      `requires vmctl contract ${engines} (engines.vmctl) but this vmctl implements ${CONTRACT_VERSION}`,
    );
  }
  return { name, version, dir, manifest: { entry: field.entry, targets: field.targets }, engines };
}

/** The error for a plugin that cannot be used; the message starts with the plugin's name. */
export function pluginError(plugin: string, problem: string, cause?: unknown): VmctlError {
  return new VmctlError("FAILED_PRECONDITION", `plugin ${plugin}: ${problem}`, cause === undefined ? {} : { cause });
}
