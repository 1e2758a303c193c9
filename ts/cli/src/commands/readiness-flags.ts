// `--ready-tcp`, `--ready-http`, `--ready-cmd` (one of them) with `--ready-interval` and
// `--ready-timeout`: the service's readiness check, which its dependents wait for.
import type { Readiness } from "@vmctl/client";
import { CliError } from "../errors.js";

export interface ReadinessFlags {
  readyTcp?: string;
  readyHttp?: string;
  readyCmd?: string;
  readyInterval?: string;
  readyTimeout?: string;
}

function milliseconds(text: string, flag: string): number {
  if (!/^\d+$/.test(text)) throw new CliError(`${flag} ${text}: expected a whole number of milliseconds`, 2);
  return Number(text);
}

/** "PORT" or "HOST:PORT" ("[::1]:PORT" for IPv6). */
function tcpCheck(text: string): { kind: "tcp"; host?: string; port: number } {
  const match = /^(?:(\[[^\]]+\]|[^:]+):)?(\d{1,5})$/.exec(text);
  const port = Number(match?.[2]);
  if (match === null || port < 1 || port > 65535) throw new CliError(`--ready-tcp ${text}: expected PORT or HOST:PORT`, 2);
  const host = match[1]?.replace(/^\[(.*)\]$/, "$1");
  return host === undefined ? { kind: "tcp", port } : { kind: "tcp", host, port };
}

/** The readiness the flags describe, or undefined when none was given. */
export function readinessFromFlags(flags: ReadinessFlags): Readiness | undefined {
  const checks = [
    flags.readyTcp === undefined ? undefined : tcpCheck(flags.readyTcp),
    flags.readyHttp === undefined ? undefined : { kind: "http" as const, url: flags.readyHttp },
    // Run by the host's shell, like a healthcheck's CMD-SHELL.
    flags.readyCmd === undefined ? undefined : { kind: "command" as const, args: ["/bin/sh", "-c", flags.readyCmd] },
  ].filter((c) => c !== undefined);
  if (checks.length > 1) throw new CliError("give one of --ready-tcp, --ready-http and --ready-cmd", 2);
  const check = checks[0];
  if (check === undefined) {
    if (flags.readyInterval !== undefined || flags.readyTimeout !== undefined) {
      throw new CliError("--ready-interval and --ready-timeout need a check (--ready-tcp, --ready-http or --ready-cmd)", 2);
    }
    return undefined;
  }
  return {
    check,
    ...(flags.readyInterval === undefined ? {} : { intervalMs: milliseconds(flags.readyInterval, "--ready-interval") }),
    ...(flags.readyTimeout === undefined ? {} : { timeoutMs: milliseconds(flags.readyTimeout, "--ready-timeout") }),
  };
}
