import type { ChildProcess } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { isAlive, type ProcessRef } from "../process.js";
import { waitFor } from "./wait.js";

/** How long a process gets to die after SIGKILL before a caller hears it did not. */
export const KILL_WAIT_MS = 10_000;

export interface Escalation {
  /** Sends the signal to what is being stopped (recording it first where a restart must know). */
  readonly send: (signal: "SIGTERM" | "SIGKILL") => void | Promise<void>;
  /** Resolves true once it has ended, false when `ms` passed first. */
  readonly endedWithin: (ms: number) => Promise<boolean>;
  /** How long SIGTERM gets before SIGKILL. */
  readonly graceMs: number;
  /** How long to wait after SIGKILL (default KILL_WAIT_MS). */
  readonly killWaitMs?: number;
  /** Told when the grace ran out, just before SIGKILL (a log line). */
  readonly onEscalate?: () => void;
}

/**
 * SIGTERM, up to `graceMs` for the end, then SIGKILL and up to `killWaitMs`: the one
 * stop every target, the VMM client and the test daemons use. Resolves whether it ended.
 */
export async function terminate(steps: Escalation): Promise<boolean> {
  await steps.send("SIGTERM");
  if (await steps.endedWithin(steps.graceMs)) return true;
  steps.onEscalate?.();
  await steps.send("SIGKILL");
  return steps.endedWithin(steps.killWaitMs ?? KILL_WAIT_MS);
}

/** Resolves true once the recorded process is gone (or a zombie), false after `ms`. */
export async function processGoneWithin(ref: ProcessRef, ms: number): Promise<boolean> {
  return (await waitFor(() => (isAlive(ref) ? undefined : true), { timeoutMs: ms, pollMs: 20 })) ?? false;
}

/** `terminate` for a process known by pid + start time (a reused pid is never signalled). */
export function terminateProcess(ref: ProcessRef, graceMs: number, onEscalate?: () => void): Promise<boolean> {
  return terminate({
    send: (signal) => signalProcess(ref, signal),
    endedWithin: (ms) => processGoneWithin(ref, ms),
    graceMs,
    onEscalate,
  });
}

/** Sends `signal` if the recorded process still runs; a process gone meanwhile is not an error. */
export function signalProcess(ref: ProcessRef, signal: NodeJS.Signals): void {
  if (!isAlive(ref)) return;
  try {
    process.kill(ref.pid, signal);
  } catch {
    // ended between the check and the signal
  }
}

/** `terminate` for a child of this process: its own exit event says when it has ended. */
export function terminateChild(child: ChildProcess, graceMs: number, killWaitMs = KILL_WAIT_MS): Promise<boolean> {
  const ended = (): boolean => child.exitCode !== null || child.signalCode !== null;
  const exit = ended() ? Promise.resolve() : new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return terminate({
    send: (signal) => {
      if (!ended()) child.kill(signal);
    },
    endedWithin: async (ms) => {
      if (ended()) return true;
      if (!Number.isFinite(ms)) return exit.then(() => true);
      // The timer is cancelled once the child exits: it must not hold this process open.
      const timer = new AbortController();
      try {
        return await Promise.race([exit.then(() => true), sleep(ms, false, { signal: timer.signal })]);
      } finally {
        timer.abort();
      }
    },
    graceMs,
    killWaitMs,
  });
}
