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
