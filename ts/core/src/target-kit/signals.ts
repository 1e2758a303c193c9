import { constants } from "node:os";

const SIGNAL_NAMES: ReadonlyMap<number, string> = new Map(Object.entries(constants.signals).map(([name, num]) => [num, name]));

/** The name of signal number `n` on this host ("SIGKILL" for 9), or undefined. */
export function signalName(n: number): string | undefined {
  return SIGNAL_NAMES.get(n);
}

/**
 * The signal a shell, runc, init.lxc or Docker encodes as 128+N in an exit status, if the
 * status has that shape (a command may also exit 137 on its own: the caller decides).
 */
export function signalOfStatus(status: number): string | undefined {
  return status > 128 ? SIGNAL_NAMES.get(status - 128) : undefined;
}

/**
 * The exit code a shell would give when a runtime could not even start the command it
 * was asked to exec (runc and lxc-attach exit 255 and say why on stderr): 127 for a
 * command that is not there, 126 for one that cannot run. Otherwise the code as it was.
 */
export function execStartCode(code: number | null, stderr: string): number | null {
  if (code !== 255) return code;
  if (/executable file not found|no such file or directory/i.test(stderr)) return 127;
  if (/permission denied|exec format error|is a directory/i.test(stderr)) return 126;
  return code;
}

/**
 * The host's name for a signal given as "SIGINT", "INT" or "2" (case-insensitive), or
 * undefined when it names none: what callers may pass as an exec's signal.
 */
export function canonicalSignal(text: string): string | undefined {
  if (/^\d{1,2}$/.test(text)) return signalName(Number(text));
  const upper = text.toUpperCase();
  const name = upper.startsWith("SIG") ? upper : `SIG${upper}`;
  return Object.hasOwn(constants.signals, name) ? name : undefined;
}
