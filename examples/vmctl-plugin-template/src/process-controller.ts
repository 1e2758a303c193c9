// One service: a host command run by a small sh wrapper in its own session, detached
// from the orchestrator. Everything that must outlive the orchestrator is in files in
// ctx.serviceDir (output, exit code, "stop was asked") and in the ledger (which process),
// so adopt() in a new orchestrator process sees what this one would have.
import { spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type {
  ExitInfo,
  JsonValue,
  LogChunk,
  LogOptions,
  ServiceController,
  ServiceState,
  StopOptions,
  TargetContext,
} from "@vmctl/core/contract";
import { followFiles, isAlive, processGroupGone, signalOfStatus, startTimeOf } from "@vmctl/core/target-kit";
import type { ProcessSpec } from "./spec.js";

/** $1 = exit file, $2... = the command. TERM is passed on to the command; its status is recorded. */
const WRAPPER = [
  'e=$1; shift',
  "trap 'kill -TERM $c 2>/dev/null; t=1' TERM",
  '"$@" &',
  "c=$!",
  '[ -n "$t" ] && kill -TERM $c 2>/dev/null',
  'while :; do t=; wait $c; s=$?; [ -z "$t" ] && break; done',
  'echo $s > "$e.tmp" && mv "$e.tmp" "$e"',
].join("\n");

const POLL_MS = 25;
const DEFAULT_STOP_TIMEOUT_MS = 10_000;

/** The wrapper process, as the ledger records it: pid + start time tell it from a reused pid. */
export interface MainProcess {
  readonly pid: number;
  readonly startTime: string;
}

export class ProcessController implements ServiceController {
  readonly #files: { stdout: string; stderr: string; exit: string; stopped: string };
  #main: MainProcess | undefined;
  /** Started before a restart, and ended: its process is gone (the exit file says how it ended). */
  #ended = false;
  #exit: ExitInfo | undefined;

  constructor(
    readonly id: string,
    readonly spec: ProcessSpec,
    readonly ctx: TargetContext,
  ) {
    const f = (name: string) => join(ctx.serviceDir, name);
    this.#files = { stdout: f("stdout.log"), stderr: f("stderr.log"), exit: f("exit"), stopped: f("stopped") };
  }

  async prepare(): Promise<void> {
    await mkdir(this.ctx.serviceDir, { recursive: true });
  }

  async start(): Promise<void> {
    if (this.#main !== undefined || this.#ended || existsSync(this.#files.exit) || existsSync(this.#files.stopped)) return;
    await this.prepare();
    // Record BEFORE making: if we die right after spawning, adopt still knows a process was meant.
    this.ctx.resources.intend({ kind: "process", key: "main" });
    const out = openSync(this.#files.stdout, "a");
    const err = openSync(this.#files.stderr, "a");
    try {
      const child = spawn("/bin/sh", ["-c", WRAPPER, "vmctl-plugin-template", this.#files.exit, ...this.spec.args], {
        detached: true, // its own session: it outlives the orchestrator, and stop can signal the group
        stdio: ["ignore", out, err],
        cwd: this.spec.cwd ?? this.ctx.serviceDir,
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...labelEnv(this.ctx.ownerLabels), ...this.spec.env },
      });
      await new Promise<void>((resolve, reject) => {
        child.once("spawn", resolve);
        child.once("error", reject);
      });
      child.unref();
      const pid = child.pid!;
      this.#main = { pid, startTime: startTimeOf(pid) ?? "gone" };
    } finally {
      closeSync(out);
      closeSync(err);
    }
    this.ctx.resources.intend({ kind: "process", key: "main", data: { ...this.#main } });
  }

  async stop(options: StopOptions = {}): Promise<void> {
    const main = this.#main;
    if (main === undefined || !isAlive(main)) return;
    writeFileSync(this.#files.stopped, "");
    signal(main.pid, "SIGTERM");
    // Graceful for timeoutMs, then forced: stop never waits longer than the caller allowed.
    if (!(await this.#goneWithin(main, options.timeoutMs ?? DEFAULT_STOP_TIMEOUT_MS))) {
      signal(-main.pid, "SIGKILL");
      await this.#goneWithin(main, Number.POSITIVE_INFINITY);
      await processGroupGone(main.pid);
    }
  }

  async state(): Promise<ServiceState> {
    const exit = this.#exitIfEnded();
    if (exit) return { phase: "exited", exit, since: exit.at };
    const main = this.#main;
    if (main === undefined) return { phase: "created", since: new Date() };
    return { phase: "running", pid: main.pid, instance: String(main.pid), since: new Date() };
  }

  logs(options: LogOptions = {}): AsyncIterable<LogChunk> {
    const files = [
      { stream: "stdout", path: this.#files.stdout },
      { stream: "stderr", path: this.#files.stderr },
    ] as const;
    // Following ends once the process has (or was never started): the last read drains what it wrote.
    return followFiles(files, {
      follow: options.follow,
      ended: () => this.#exitIfEnded() !== undefined || this.#main === undefined,
      dir: this.ctx.serviceDir,
      maxWaitMs: POLL_MS * 2,
    });
  }

  async wait(): Promise<ExitInfo> {
    for (;;) {
      const exit = this.#exitIfEnded();
      if (exit) return exit;
      await sleep(POLL_MS);
    }
  }

  async destroy(): Promise<void> {
    const main = this.#main;
    if (main !== undefined && isAlive(main)) {
      writeFileSync(this.#files.stopped, "");
      signal(-main.pid, "SIGKILL");
      await this.#goneWithin(main, Number.POSITIVE_INFINITY);
    }
    // The wrapper can be reaped before the rest of its group (the command and its
    // children) has died: destroy frees everything, so wait for the whole group.
    // processGroupGone ignores zombies (killed members init has not reaped yet, which
    // `kill(-pgid, 0)` still finds, for seconds on a busy host).
    if (main !== undefined) await processGroupGone(main.pid);
    this.#exitIfEnded();
    // Files stay in the service dir: the orchestrator removes the dir after destroy.
    this.ctx.resources.release("process", "main");
  }

  record(): JsonValue {
    return this.#main === undefined ? {} : { ...this.#main };
  }

  /** adopt(): follow the recorded process again, or finish off a start() that was interrupted. */
  reattach(recorded: Partial<MainProcess>): void {
    if (typeof recorded.pid === "number" && typeof recorded.startTime === "string") {
      this.#main = { pid: recorded.pid, startTime: recorded.startTime };
      return;
    }
    // start() recorded its intent but not the pid: the orchestrator died in between. If the
    // wrapper was spawned, its command line names this service's exit file: follow it.
    const found = wrapperOf(this.#files.exit);
    if (found !== undefined) {
      this.#main = found;
      this.ctx.resources.intend({ kind: "process", key: "main", data: { ...found } });
    } else if (existsSync(this.#files.exit) || existsSync(this.#files.stopped)) {
      this.#ended = true; // it ran, and is over
    }
    // Else nothing was spawned: the service is still "created", and the orchestrator's
    // start() makes it (the intent stays in the ledger until destroy releases it).
  }

  /** The exit once the process is gone: from the wrapper's file, else "stopped" (we killed it) or "lost". */
  #exitIfEnded(): ExitInfo | undefined {
    if (this.#exit) return this.#exit;
    if (this.#main === undefined && !this.#ended) return undefined;
    if (this.#main !== undefined && isAlive(this.#main)) return undefined;
    const stopped = existsSync(this.#files.stopped);
    const reason = stopped ? "stopped" : "exited";
    const status = readOptional(this.#files.exit);
    if (status !== undefined) {
      const n = Number.parseInt(status, 10);
      const at = statSync(this.#files.exit).mtime;
      const name = signalOfStatus(n);
      this.#exit = name ? { code: null, signal: name, reason, at } : { code: n, reason, at };
    } else if (stopped) {
      this.#exit = { code: null, signal: "SIGKILL", reason: "stopped", at: new Date() };
    } else {
      this.#exit = { code: null, reason: "lost", detail: "the process ended without recording its exit code", at: new Date() };
    }
    return this.#exit;
  }

  async #goneWithin(main: MainProcess, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (isAlive(main)) {
      if (Date.now() >= deadline) return false;
      await sleep(POLL_MS);
    }
    return true;
  }
}

/** Owner labels as environment variables, so a reaper can find our processes in /proc/PID/environ. */
function labelEnv(labels: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(labels).map(([k, v], i) => [`VMCTL_LABEL_${i}`, `${k}=${v}`]));
}

/** The live wrapper whose command line holds `exitFile` (its first argument), if any. */
function wrapperOf(exitFile: string): MainProcess | undefined {
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    const args = readOptional(`/proc/${pid}/cmdline`)?.split("\0") ?? [];
    if (args[0] !== "/bin/sh" || !args.includes(exitFile)) continue;
    const startTime = startTimeOf(pid);
    if (startTime !== undefined) return { pid, startTime };
  }
  return undefined;
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
  }
}

function readOptional(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8").trim();
  } catch {
    return undefined;
  }
}
