// vmctld's config file: per-target options (`targets.<name>`, handed to the target's init
// as PluginEnvironment.options), e.g. the aws-ec2 region, endpoint and log bucket.
import { readFileSync } from "node:fs";

export interface DaemonConfig {
  readonly targets: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
}

/** A config file that cannot be used: the message names the file and the field. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Checks untrusted JSON; `source` names the file in messages. */
export function parseConfig(value: unknown, source: string): DaemonConfig {
  if (!isObject(value)) throw new ConfigError(`${source}: must be a JSON object`);
  for (const key of Object.keys(value)) {
    if (key !== "targets") throw new ConfigError(`${source}: ${key}: unknown field (known: targets)`);
  }
  const targets = value.targets ?? {};
  if (!isObject(targets)) throw new ConfigError(`${source}: targets: must be an object of target name → options`);
  for (const [name, options] of Object.entries(targets)) {
    if (!isObject(options)) throw new ConfigError(`${source}: targets.${name}: must be an object`);
  }
  return { targets: targets as DaemonConfig["targets"] };
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
  return parseConfig(value, path);
}
