import { CliError } from "../errors.js";

/** Commander collector for repeatable options. */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** ["K=V", ...] as a map; a missing "=" is a usage error naming the option. */
export function keyValues(items: readonly string[], option: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of items) {
    const eq = item.indexOf("=");
    if (eq <= 0) throw new CliError(`${option} ${item}: expected KEY=VALUE`, 2);
    out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}
