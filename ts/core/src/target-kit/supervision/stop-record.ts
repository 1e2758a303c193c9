import { readJsonFile, writeAtomic } from "../files.js";

/**
 * What stop() did, kept in a file so the exit still reads as "stopped" (not a crash)
 * after the orchestrator restarts: the signals sent, or that it was stopped before it
 * ever started.
 */
export interface StopRecord {
  readonly beforeStart?: boolean;
  readonly signals: readonly string[];
}

export function readStopRecord(file: string): StopRecord | undefined {
  return readJsonFile<StopRecord>(file);
}

/** Records that the service was stopped before it started (start() then does nothing). */
export function recordStopBeforeStart(file: string): void {
  writeAtomic(file, JSON.stringify({ beforeStart: true, signals: [] } satisfies StopRecord));
}

/** Adds `signal` to the record, before it is sent: a crash right after must still know. */
export function recordSignal(file: string, signal: string): void {
  const record = readStopRecord(file) ?? { signals: [] };
  if (record.signals.includes(signal)) return;
  writeAtomic(file, JSON.stringify({ ...record, signals: [...record.signals, signal] } satisfies StopRecord));
}
