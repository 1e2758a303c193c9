// For this folder's tests: the real `vmctl-agent` (the checkout's build, found like the
// target finds it) serving a unix socket in a temporary directory, outside any VM
// (`--no-init`), and helpers to read an exec session whole.
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { requireAgentBinary } from "../agent-files.js";
import { AgentConnection } from "./connection.js";
import type { ExecSession } from "./exec-session.js";
import type { ExecExit } from "./types.js";

/** How long a test waits for the agent to answer its first call. */
const READY_TIMEOUT_MS = 10_000;

export interface RunningAgent {
  readonly connection: AgentConnection;
  readonly socketPath: string;
  readonly dir: string;
  readonly child: ChildProcess;
  /** What the agent logged (its stderr), for failure messages. */
  log(): string;
  /** Closes the connection, ends the agent (SIGKILL after 2 s) and removes its directory. */
  stop(): Promise<void>;
}

/** Starts the agent; fails naming how to build it when there is none. */
export async function startAgent(): Promise<RunningAgent> {
  const binary = requireAgentBinary();
  const dir = mkdtempSync(join(tmpdir(), "vmctl-agent-test-"));
  const socketPath = join(dir, "agent.sock");
  // Under `setpriv --pdeathsig KILL` (it sets the death signal, then execs the agent): an
  // agent must not outlive a test worker that ava's timeout killed.
  const child = spawn("setpriv", ["--pdeathsig", "KILL", "--", binary, "--listen", `unix:${socketPath}`, "--no-init"], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  child.stderr?.setEncoding("utf8").on("data", (text: string) => (log = (log + text).slice(-8192)));
  const exited = once(child, "exit");
  const connection = new AgentConnection(socketPath);
  const stop = async (): Promise<void> => {
    connection.close();
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const killer = setTimeout(() => child.kill("SIGKILL"), 2000);
      await exited;
      clearTimeout(killer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await connection.waitReady(READY_TIMEOUT_MS);
  } catch (err) {
    await stop();
    throw new Error(`${binary} did not serve ${socketPath}: ${String(err)}\n${log}`);
  }
  return { connection, socketPath, dir, child, log: () => log, stop };
}

export interface ExecResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly exit: ExecExit;
}

/** Reads a session's output whole (for small outputs) and its exit. */
export async function collect(session: ExecSession): Promise<ExecResult> {
  const out = { stdout: [] as Buffer[], stderr: [] as Buffer[] };
  for await (const chunk of session) out[chunk.stream].push(chunk.data);
  return { stdout: Buffer.concat(out.stdout).toString(), stderr: Buffer.concat(out.stderr).toString(), exit: await session.exited };
}
