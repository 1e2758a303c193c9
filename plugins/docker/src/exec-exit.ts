// How an exec'd command ended, from Docker's exit code and what the session did. Pure.
import type { ExecExit } from "@vmctl/core/contract";

/**
 * The code a shell gives for a command Docker could not start. Docker reports 126 for any
 * of them (and the reason as the exec's only output: "OCI runtime exec failed: ... exec:
 * "x": executable file not found in $PATH"); a shell says 127 for a command not found.
 */
export function startFailureCode(message: string): 126 | 127 {
  return /executable file not found|no such file or directory/i.test(message) ? 127 : 126;
}

/**
 * The exit of a command that ran. Docker reports death by signal N as 128+N, like a
 * command's own `exit 128+N`: it is read as the signal only when the session sent that
 * signal (signal(), or SIGKILL from cancel()); else it is the code. `signalsSent` maps
 * each sent signal's number to the name it was sent by.
 */
export function ranExit(exitCode: number, signalsSent: ReadonlyMap<number, string>): ExecExit {
  const signal = exitCode > 128 ? signalsSent.get(exitCode - 128) : undefined;
  return signal === undefined ? { code: exitCode } : { code: null, signal };
}
