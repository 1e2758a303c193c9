// Small formatters for service listings.
import type { ExitInfo, ServiceRecord } from "@vmctl/client";

/** "5s", "3m", "2h", "4d": how long ago. */
export function age(since: Date, now = Date.now()): string {
  const s = Math.max(0, Math.floor((now - since.getTime()) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

/** "0", "137", "SIGKILL", "lost", or "-" while it has not exited. */
export function exitSummary(exit: ExitInfo | undefined): string {
  if (exit === undefined) return "-";
  if (exit.code !== null) return String(exit.code);
  return exit.signal ?? exit.reason;
}

/** A service as JSON-friendly data (dates as ISO strings). */
export function serviceJson(s: ServiceRecord): unknown {
  return JSON.parse(JSON.stringify(s));
}

const SIZE_UNITS = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];

/** Bytes as docker shows them: base 1000, four significant digits ("12.3MB", "1.081GB", "512B"). */
export function humanSize(bytes: number): string {
  let size = Math.max(0, bytes);
  let unit = 0;
  while (size >= 1000 && unit < SIZE_UNITS.length - 1) {
    size /= 1000;
    unit++;
  }
  return `${Number(size.toPrecision(4))}${SIZE_UNITS[unit]}`;
}

/** How long ago, as docker words it ("About an hour ago", "3 weeks ago"). */
export function timeAgo(since: Date, now = Date.now()): string {
  const seconds = Math.max(0, (now - since.getTime()) / 1000);
  const minutes = Math.round(seconds / 60);
  const hours = Math.round(seconds / 3600);
  const ago = (text: string): string => `${text} ago`;
  if (seconds < 1) return ago("Less than a second");
  if (Math.floor(seconds) === 1) return ago("1 second");
  if (seconds < 60) return ago(`${Math.floor(seconds)} seconds`);
  if (minutes === 1) return ago("About a minute");
  if (minutes < 60) return ago(`${minutes} minutes`);
  if (hours === 1) return ago("About an hour");
  if (hours < 48) return ago(`${hours} hours`);
  if (hours < 24 * 7 * 2) return ago(`${Math.floor(hours / 24)} days`);
  if (hours < 24 * 30 * 2) return ago(`${Math.floor(hours / 24 / 7)} weeks`);
  if (hours < 24 * 365 * 2) return ago(`${Math.floor(hours / 24 / 30)} months`);
  return ago(`${Math.floor(hours / 24 / 365)} years`);
}

/** A digest's first 12 hex digits ("sha256:3f4a9c1b2d7e…" → "3f4a9c1b2d7e"), as docker shortens ids. */
export function shortDigest(digest: string): string {
  const colon = digest.indexOf(":");
  return digest.slice(colon + 1, colon + 13);
}

/** A reference as docker's REPOSITORY and TAG columns show it: Docker Hub's prefixes dropped, `<none>` for what is not there. */
export function splitReference(reference: string): { repository: string; tag: string } {
  const at = reference.indexOf("@");
  let repository = at < 0 ? reference : reference.slice(0, at);
  let tag = "<none>";
  const colon = repository.lastIndexOf(":");
  if (colon > repository.lastIndexOf("/")) {
    if (at < 0) tag = repository.slice(colon + 1);
    repository = repository.slice(0, colon);
  }
  for (const prefix of ["docker.io/library/", "docker.io/"]) {
    if (repository.startsWith(prefix)) {
      repository = repository.slice(prefix.length);
      break;
    }
  }
  return { repository, tag };
}
