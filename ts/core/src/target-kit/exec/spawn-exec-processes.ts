// The processes of one exec session as /proc shows them: the runtime the kit spawned,
// the command it started in the container, and everything below. From /proc, because
// neither runc nor lxc-attach says which pid the command got while it runs.
import { readdirSync, readFileSync, readlinkSync } from "node:fs";

/** The direct children of `pid`, of all its threads (a Go runtime such as runc forks from any). */
export function childrenOfProcess(pid: number): number[] {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const children: number[] = [];
  for (const tid of tasks) {
    try {
      for (const child of readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").split(" ")) {
        if (child) children.push(Number(child));
      }
    } catch {
      // the thread ended meanwhile
    }
  }
  return children;
}

/** `pid` and every process below it, parents before their children. */
export function processTree(pid: number): number[] {
  const tree = [pid];
  for (let i = 0; i < tree.length && tree.length < 100_000; i++) tree.push(...childrenOfProcess(tree[i]!));
  return tree;
}

function pidNamespaceOf(pid: number): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/pid`);
  } catch {
    return undefined;
  }
}

function commandName(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trimEnd();
  } catch {
    return undefined;
  }
}

/** runc's own stages before the command is exec'd ("runc:[2:INIT]"). */
const RUNC_STAGE = /^runc:\[\d:\w+\]$/;

/**
 * The command a runtime (runc exec, lxc-attach) runs in a container, once exec'd: its
 * children that live in another PID namespace than its own and no longer run the
 * runtime's code. Before that, a child in the container is still the runtime's helper
 * (runc's init stage, lxc-attach's fork) — a signal sent to it would not reach the
 * command, and could end the helper while the runtime waits for it.
 */
export function commandsInContainer(runtimePid: number): number[] {
  const own = pidNamespaceOf(runtimePid);
  const runtimeName = commandName(runtimePid);
  if (own === undefined) return [];
  return childrenOfProcess(runtimePid).filter((child) => {
    const ns = pidNamespaceOf(child);
    const name = commandName(child);
    return ns !== undefined && ns !== own && name !== undefined && name !== runtimeName && !RUNC_STAGE.test(name);
  });
}

/** Sends `signal` to `pid`; a process that is gone already is not an error. */
export function signalIfAlive(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
  }
}
