// `--disk-size`: the writable disk a service gets over its image (microvm's diskSizeMib),
// written as people write sizes: 512M, 20G, 1.5G, 20GiB; a bare number is MiB.
import { CliError } from "../errors.js";

const UNITS: Readonly<Record<string, number>> = { "": 1, m: 1, mb: 1, mib: 1, g: 1024, gb: 1024, gib: 1024, t: 1024 * 1024, tb: 1024 * 1024, tib: 1024 * 1024 };
const SIZE = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i;

/** The size in whole MiB (rounded up); a usage error (exit 2) naming the flag otherwise. */
export function parseDiskSize(text: string): number {
  const match = SIZE.exec(text.trim());
  const factor = match === null ? undefined : UNITS[(match[2] as string).toLowerCase()];
  if (match === null || factor === undefined) {
    throw new CliError(`--disk-size ${JSON.stringify(text)}: a size such as 512M, 20G or 1T (a bare number is MiB)`, 2);
  }
  const mib = Math.ceil(Number(match[1]) * factor);
  if (!Number.isSafeInteger(mib) || mib <= 0) throw new CliError(`--disk-size ${JSON.stringify(text)}: must be more than 0`, 2);
  return mib;
}
