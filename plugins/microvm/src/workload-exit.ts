// How an image VM's workload ended, in the service's terms, and what is told when its
// agent never answers. Pure apart from reading the console file's tail.
import { readFileSync } from "node:fs";
import type { ExecResult, ExitInfo } from "@vmctl/core/contract";
import type { ExecExit, OutputChunk } from "./agent/index.js";

/**
 * The service's exit from the workload's: its code ("exited"), or its signal ("stopped"
 * when stop() asked for it, else "exited"); "oom" when the guest's OOM killer killed it;
 * "failed" with the agent's message when it could not be run (127 not found, 126 not
 * executable).
 */
export function workloadExit(exit: ExecExit, stopRequested: boolean, at = new Date()): ExitInfo {
  const code = exit.code ?? null;
  const signal = exit.signal === undefined ? {} : { signal: exit.signal.startsWith("SIG") ? exit.signal : `SIG${exit.signal}` };
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
  let text: string;
  try {
    text = readFileSync(consoleFile, "utf8");
  } catch {
    return "";
  }
  const lines = text.replace(/\r/g, "").trimEnd().split("\n");
  const first = lines.findIndex((l) => /vmctl-agent|Kernel panic/.test(l));
  return (first < 0 ? lines.slice(-count) : lines.slice(Math.max(0, first - 2), first - 2 + count)).join("\n");
}

/** Reads an exec session's output whole (the contract's buffered exec): at most `limit` bytes per stream. */
export async function collectOutput(chunks: AsyncIterable<OutputChunk>, limit: number): Promise<{ stdout: Buffer; stderr: Buffer; truncated: boolean }> {
  const parts = { stdout: [] as Buffer[], stderr: [] as Buffer[] };
  const sizes = { stdout: 0, stderr: 0 };
  let truncated = false;
  for await (const { stream, data } of chunks) {
    const room = limit - sizes[stream];
    if (room <= 0) {
      truncated = true;
      continue;
    }
    const kept = data.byteLength > room ? data.subarray(0, room) : data;
    truncated ||= kept.byteLength < data.byteLength;
    parts[stream].push(kept);
    sizes[stream] += kept.byteLength;
  }
  return { stdout: Buffer.concat(parts.stdout), stderr: Buffer.concat(parts.stderr), truncated };
}

/** exec()'s result: a command that could not run has its code (127/126) and the agent's message on stderr. */
export function execResult(exit: ExecExit, out: { stdout: Buffer; stderr: Buffer }): ExecResult {
  const stderr = exit.message !== "" && out.stderr.byteLength === 0 ? Buffer.from(`${exit.message}\n`) : out.stderr;
  return { code: exit.code ?? null, stdout: out.stdout, stderr };
}
