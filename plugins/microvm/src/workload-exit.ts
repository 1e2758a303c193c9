// How an image VM's workload ended, in the service's terms, and what is told when its
// agent never answers. Pure apart from reading the console file's tail.
import { readFileSync } from "node:fs";
import type { ExitInfo } from "@vmctl/core/contract";
import type { ExecExit } from "./agent/index.js";

/**
 * The service's exit from the workload's: its code ("exited"), or its signal ("stopped"
 * when stop() asked for it, else "exited"); "oom" when the guest's OOM killer killed it;
 * "failed" with the agent's message when it could not be run (127 not found, 126 not
 * executable).
 */
export function workloadExit(exit: ExecExit, stopRequested: boolean, at = new Date()): ExitInfo {
  const code = exit.code ?? null;
  const signal = exit.signal === undefined ? {} : { signal: fullSignalName(exit.signal) };
  if (exit.message !== "") return { code, ...signal, reason: "failed", detail: exit.message, at };
  if (exit.oom) return { code, ...signal, reason: "oom", detail: "the guest's OOM killer killed the workload", at };
  if (exit.signal !== undefined) return { code: null, ...signal, reason: stopRequested ? "stopped" : "exited", detail: `the workload was killed by ${exit.signal}`, at };
  return { code, reason: "exited", at };
}

/**
 * What the console says about a VM whose agent did not answer: from just before the
 * agent's first message (or the kernel's panic line) on, else its last lines; at most
 * `count` lines ("" when there is no console file).
 */
export function consoleExcerpt(consoleFile: string, count = 20): string {
  const lines = consoleLines(consoleFile);
  const first = lines.findIndex((l) => /vmctl-agent|Kernel panic/.test(l));
  return (first < 0 ? lines.slice(-count) : lines.slice(Math.max(0, first - 2), first - 2 + count)).join("\n");
}

/** The console's last `count` lines ("" when there is no console file). */
export function consoleTail(consoleFile: string, count: number): string {
  return consoleLines(consoleFile).slice(-count).join("\n");
}

/** The console file's lines, carriage returns dropped (none when there is no file). */
function consoleLines(consoleFile: string): string[] {
  try {
    return readFileSync(consoleFile, "utf8").replace(/\r/g, "").trimEnd().split("\n");
  } catch {
    return [];
  }
}

/** A signal's name as the contract gives it ("SIGKILL"), whether the agent said "KILL" or "SIGKILL". */
export function fullSignalName(name: string): string {
  return name.startsWith("SIG") ? name : `SIG${name}`;
}
