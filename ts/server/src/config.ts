// vmctld's config file: per-target options (`targets.<name>`, handed to the target's init
// as PluginEnvironment.options), e.g. the aws-ec2 region, endpoint and log bucket, and
// more plugins to load (`plugins`: package names or paths, as `--plugin` takes them; a
// relative path is relative to the config file), and where networks get their subnets
// (`network.pool`, `network.poolPrefix`).
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { isPathReference } from "@vmctl/core/loader";
import { VmctlError } from "@vmctl/core/contract";
import { checkSubnetPool } from "@vmctl/core";

export interface DaemonConfig {
  readonly targets: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  /** Plugins loaded besides the built-ins and `--plugin`: package names, or absolute paths. */
  readonly plugins: readonly string[];
  /** `images.insecureRegistries`: registries (`host:port`) spoken to over plain HTTP besides loopback ones. */
  readonly insecureRegistries: readonly string[];
  /** `network.pool` and `network.poolPrefix`: where networks without a subnet get one. */
  readonly network: { readonly pool?: string; readonly poolPrefix?: number };
}

const KNOWN = ["images", "network", "plugins", "targets"];
const IMAGE_FIELDS = ["insecureRegistries"];
const NETWORK_FIELDS = ["pool", "poolPrefix"];

/** A config file that cannot be used: the message names the file and the field. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Checks untrusted JSON; `source` names the file in messages. */
export function parseConfig(value: unknown, source: string): DaemonConfig {
  if (!isObject(value)) throw new ConfigError(`${source}: must be a JSON object`);
  for (const key of Object.keys(value)) {
    if (!KNOWN.includes(key)) throw new ConfigError(`${source}: ${key}: unknown field (known: ${KNOWN.join(", ")})`);
  }
  const plugins = value.plugins ?? [];
  if (!Array.isArray(plugins)) throw new ConfigError(`${source}: plugins: must be an array of plugin package names or paths`);
  for (const [i, plugin] of plugins.entries()) {
    if (typeof plugin !== "string" || plugin === "") throw new ConfigError(`${source}: plugins[${i}]: must be a package name or a path`);
  }
  const targets = value.targets ?? {};
  if (!isObject(targets)) throw new ConfigError(`${source}: targets: must be an object of target name → options`);
  for (const [name, options] of Object.entries(targets)) {
    if (!isObject(options)) throw new ConfigError(`${source}: targets.${name}: must be an object`);
  }
  const images = value.images ?? {};
  if (!isObject(images)) throw new ConfigError(`${source}: images: must be an object`);
  for (const key of Object.keys(images)) {
    if (!IMAGE_FIELDS.includes(key)) throw new ConfigError(`${source}: images.${key}: unknown field (known: ${IMAGE_FIELDS.join(", ")})`);
  }
  const insecure = images.insecureRegistries ?? [];
  if (!Array.isArray(insecure)) throw new ConfigError(`${source}: images.insecureRegistries: must be an array of "host:port" strings`);
  for (const [i, registry] of insecure.entries()) {
    if (typeof registry !== "string" || !/^[A-Za-z0-9.-]+(:[0-9]{1,5})?$/.test(registry)) {
      throw new ConfigError(`${source}: images.insecureRegistries[${i}]: must be "host" or "host:port"`);
    }
  }
  const network = value.network ?? {};
  if (!isObject(network)) throw new ConfigError(`${source}: network: must be an object`);
  for (const key of Object.keys(network)) {
    if (!NETWORK_FIELDS.includes(key)) throw new ConfigError(`${source}: network.${key}: unknown field (known: ${NETWORK_FIELDS.join(", ")})`);
  }
  try {
    checkSubnetPool(network.pool, network.poolPrefix);
  } catch (err) {
    if (err instanceof VmctlError) throw new ConfigError(`${source}: ${err.message}`);
    throw err;
  }
  return {
    targets: targets as DaemonConfig["targets"],
    plugins: plugins as string[],
    insecureRegistries: insecure as string[],
    network: {
      ...(network.pool === undefined ? {} : { pool: network.pool as string }),
      ...(network.poolPrefix === undefined ? {} : { poolPrefix: network.poolPrefix as number }),
    },
  };
}

export function readConfig(path: string): DaemonConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(`${path}: cannot read the config file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${path}: not valid JSON: ${(err as Error).message}`);
  }
  const config = parseConfig(value, path);
  // A relative plugin path means the same wherever the daemon was started from: relative to the file.
  return { ...config, plugins: config.plugins.map((p) => (isPathReference(p) ? resolve(dirname(path), p) : p)) };
}
