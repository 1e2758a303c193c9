// Makes every process the nested host starts die with the test process. Two layers:
// the kernel kills the child when its parent dies (PR_SET_PDEATHSIG, set by util-linux's
// `setpriv --pdeathsig KILL` just before it execs the real program), which covers even
// a SIGKILL of the test process; and exit/signal handlers kill what is still running
// when the test process exits or is interrupted, which covers the narrow window before
// setpriv has set the death signal.
import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { requireTool } from "./paths.js";

const live = new Set<ChildProcess>();
let handlersInstalled = false;

function killAll(): void {
  for (const child of live) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
}

function onSignal(signal: NodeJS.Signals): void {
  killAll();
  // Ours is the only handler: let the signal's default action (exit) happen, as if we
  // had never listened. Otherwise the other listeners decide, and we stay installed.
  if (process.listenerCount(signal) === 1) {
    process.removeListener(signal, onSignal);
    process.kill(process.pid, signal);
  }
}

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on("exit", killAll);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, onSignal);
}

/**
 * Spawns `command args` so that it cannot outlive this process. The child is SIGKILLed
 * when this process (the spawning thread: Node spawns from its main thread) dies, exits
 * or gets SIGINT/SIGTERM/SIGHUP.
 */
export function spawnTied(command: string, args: readonly string[], options: SpawnOptions): ChildProcess {
  const setpriv = requireTool("setpriv", "util-linux");
  installHandlers();
  const child = spawn(setpriv, ["--pdeathsig", "KILL", "--", command, ...args], { ...options, detached: false });
  live.add(child);
  child.once("exit", () => live.delete(child));
  child.once("error", () => live.delete(child));
  return child;
}

/** How many tied children are still running (for tests of the harness itself). */
export function liveTiedChildren(): number {
  return live.size;
}
