// Helpers for the engine's tests: the real "process" target fixture, temporary state
// directories, and a /proc scan for the processes that target made.
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { silentLogger } from "../log/logger.js";
import { Orchestrator, type OrchestratorOptions } from "../orchestrator/engine.js";

/** The plugin package tests/fixtures/vmctl-plugin-process in this repository. */
export const PROCESS_PLUGIN_DIR = fileURLToPath(new URL("../../../../tests/fixtures/vmctl-plugin-process", import.meta.url));

const made: string[] = [];
process.once("exit", () => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

/** A fresh directory under the system temp dir, removed when the test process exits. */
export function tempDir(prefix = "vmctl-core-test-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

/** An orchestrator on `stateDir` with the process target loaded by path. */
export function openEngine(stateDir: string, options: Partial<OrchestratorOptions> = {}): Promise<Orchestrator> {
  return Orchestrator.open({ stateDir, plugins: [PROCESS_PLUGIN_DIR], log: silentLogger, ...options });
}

/** Live wrapper processes the process target started for services under `stateDir`: pid → service id. */
export function markedProcesses(stateDir: string): Map<number, string> {
  const prefix = `vmctl-process:${join(stateDir, "services")}/`;
  const found = new Map<number, string>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let args: string[];
    let stat: string;
    try {
      args = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      stat = readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue;
    }
    if (stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z")) continue;
    const marker = args.find((a) => a.startsWith(prefix));
    if (marker !== undefined) found.set(Number(entry), marker.slice(prefix.length));
  }
  return found;
}

/** A TCP port nobody listens on right now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

/** Collects a log stream as text. */
export async function collectText(chunks: AsyncIterable<{ data: Uint8Array }>): Promise<string> {
  let text = "";
  const decoder = new TextDecoder();
  for await (const chunk of chunks) text += decoder.decode(chunk.data, { stream: true });
  return text + decoder.decode();
}

/** Follows a log stream until `needle` appears; the stream is closed once it does. */
export async function waitForText(chunks: AsyncIterable<{ data: Uint8Array }>, needle: string): Promise<void> {
  let text = "";
  const decoder = new TextDecoder();
  for await (const chunk of chunks) {
    text += decoder.decode(chunk.data, { stream: true });
    if (text.includes(needle)) return;
  }
  throw new Error(`log ended without ${JSON.stringify(needle)}; got ${JSON.stringify(text)}`);
}
