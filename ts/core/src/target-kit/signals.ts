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
