// Drives an OCI runtime binary (runc, or crun which takes the same command line) for
// one root directory. Every call is one short-lived process; nothing here holds state.
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { VmctlError } from "@vmctl/core/contract";
import type { ExecProcess, ExecRequest } from "@vmctl/core/contract";
import { execStartCode, spawnExec } from "@vmctl/core/target-kit";

/** What `runc state` says about a container that exists. */
export interface RuntimeContainerState {
  readonly id: string;
  /** "creating" | "created" | "running" | "paused" | "stopped" */
  readonly status: string;
  readonly pid: number;
  readonly annotations: Readonly<Record<string, string>>;
}

interface RawResult {
  readonly code: number | null;
  readonly stdout: Buffer;
  readonly stderr: Buffer;
}

const GONE = /does not exist|not exist|no such|not found/i;
const NOT_RUNNING = /not running|stopped|container not started|process already finished/i;

export class OciRuntime {
  constructor(
    /** "runc" or "crun". */
    readonly name: string,
    /** Absolute path of the binary. */
    readonly binary: string,
    /** The runtime's state root (`--root`), private to vmctl. */
    readonly root: string,
  ) {}

  /** The container's state, or undefined when the runtime does not know it. */
  async state(id: string): Promise<RuntimeContainerState | undefined> {
    const r = await this.#run(["state", id]);
    if (r.code !== 0) {
      if (GONE.test(r.stderr.toString())) return undefined;
      throw this.#fail("state", id, r);
    }
    const raw = JSON.parse(r.stdout.toString()) as {
      id: string;
      status: string;
      pid?: number;
      annotations?: Record<string, string>;
    };
    return { id: raw.id, status: raw.status, pid: raw.pid ?? 0, annotations: raw.annotations ?? {} };
  }

  /** Ids of every container under this root. */
  async list(): Promise<string[]> {
    const r = await this.#run(["list", "--format", "json"]);
    if (r.code !== 0) throw this.#fail("list", "", r);
    const rows = JSON.parse(r.stdout.toString() || "null") as { id: string }[] | null;
    return (rows ?? []).map((row) => row.id);
  }

  /** Sends a signal to the container's init. A container that is gone or stopped is not an error. */
  async kill(id: string, signal: string): Promise<void> {
    const r = await this.#run(["kill", id, signal]);
    if (r.code === 0) return;
    const err = r.stderr.toString();
    if (GONE.test(err) || NOT_RUNNING.test(err)) return;
    throw this.#fail(`kill ${signal}`, id, r);
  }

  /** Removes the container, killing it first if needed. A container that is gone is not an error. */
  async delete(id: string): Promise<void> {
    const r = await this.#run(["delete", "--force", id]);
    if (r.code === 0 || GONE.test(r.stderr.toString())) return;
    throw this.#fail("delete", id, r);
  }

  async pause(id: string): Promise<void> {
    const r = await this.#run(["pause", id]);
    if (r.code !== 0) throw this.#fail("pause", id, r, "FAILED_PRECONDITION");
  }

  async resume(id: string): Promise<void> {
    const r = await this.#run(["resume", id]);
    if (r.code !== 0) throw this.#fail("resume", id, r, "FAILED_PRECONDITION");
  }

  /**
   * Runs a further process in the container with the config's env, cwd and user, in
   * the foreground: runc relays its stdio (a terminal of its own with `-t`, resized on
   * SIGWINCH), and exits with its status (128+N for death by signal N). The kit signals
   * the command itself, which is runc's child in the container's PID namespace.
   */
  exec(id: string, request: ExecRequest): Promise<ExecProcess> {
    return spawnExec({
      request,
      argv: [this.binary, "--root", this.root, "exec", ...(request.tty ? ["-t"] : []), id, ...request.args],
      inContainer: true,
      // runc's own failure to start the command is 255; report what a shell would.
      mapExit: (exit, stderrTail) => ({ ...exit, code: execStartCode(exit.code, stderrTail) }),
    });
  }

  /**
   * The command line that runs a container in the foreground: `runc run` creates,
   * starts, waits for the container's init, deletes the container, and exits with
   * its status (128+N when init was killed by signal N).
   */
  runCommand(opts: { id: string; bundle: string; pidFile: string; logFile: string }): string[] {
    return [
      this.binary,
      "--root",
      this.root,
      "--log",
      opts.logFile,
      "--log-format",
      "json",
      "run",
      "--bundle",
      opts.bundle,
      "--pid-file",
      opts.pidFile,
      opts.id,
    ];
  }

  #run(args: readonly string[]): Promise<RawResult> {
    return new Promise((resolve, reject) => {
      execFile(
        this.binary,
        ["--root", this.root, ...args],
        { encoding: "buffer", maxBuffer: 64 * 1024 * 1024 },
        (err, stdout, stderr) => {
          if (err && typeof (err as NodeJS.ErrnoException).code === "string") {
            reject(VmctlError.from(err, `${this.name} ${args[0] ?? ""}`));
            return;
          }
          const code = err ? ((err as { code?: number | null }).code ?? null) : 0;
          resolve({ code, stdout, stderr });
        },
      );
    });
  }

  #fail(what: string, id: string, r: RawResult, code: "INTERNAL" | "FAILED_PRECONDITION" = "INTERNAL"): VmctlError {
    const message = lastLine(r.stderr.toString()) || `exit status ${r.code}`;
    return new VmctlError(code, `${this.name} ${what}${id ? ` ${id}` : ""}: ${message}`);
  }
}

/** The last non-empty line of runtime output, with runc's logrus framing removed. */
export function lastLine(text: string): string {
  const lines = text.split("\n").filter((l) => l.trim() !== "");
  const line = lines[lines.length - 1] ?? "";
  const msg = /msg="((?:[^"\\]|\\.)*)"/.exec(line);
  return msg?.[1] ? msg[1].replace(/\\"/g, '"') : line.trim();
}

/** The runtime's last error-level message from its JSON log, if any. */
export function runtimeError(logFile: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(logFile, "utf8");
  } catch {
    return undefined;
  }
  let message: string | undefined;
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    try {
      const entry = JSON.parse(line) as { level?: string; msg?: string };
      if ((entry.level === "error" || entry.level === "fatal") && entry.msg) message = entry.msg;
    } catch {
      message = lastLine(line) || message;
    }
  }
  return message;
}
