// Drives the lxc-* command-line tools for one private lxcpath. Every call is one
// short-lived process; nothing here holds state.
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { VmctlError, type ExecProcess, type ExecRequest } from "@vmctl/core/contract";
import { spawnExec } from "@vmctl/core/target-kit";

/** The lxc-* binaries this target uses, by absolute path. Only lxc-execute, lxc-stop and lxc-info are required. */
export interface LxcBinaries {
  readonly execute: string;
  readonly stop: string;
  readonly info: string;
  readonly attach?: string | undefined;
  readonly freeze?: string | undefined;
  readonly unfreeze?: string | undefined;
  readonly create?: string | undefined;
  readonly destroy?: string | undefined;
}

export interface ToolResult {
  readonly code: number | null;
  readonly stdout: Buffer;
  readonly stderr: Buffer;
}

const NOT_RUNNING = /not running|doesn't exist|is not defined|not defined/i;

export class LxcTools {
  constructor(
    readonly bin: LxcBinaries,
    /** The private lxcpath (`-P`): absolute, or LXC looks for the command socket elsewhere. */
    readonly lxcpath: string,
  ) {}

  /** "RUNNING", "FROZEN", "STOPPED", ... or undefined when LXC does not know the container. */
  async state(name: string): Promise<string | undefined> {
    const r = await run(this.bin.info, ["-P", this.lxcpath, "-n", name, "-s", "-H"]);
    if (r.code !== 0) return undefined;
    return r.stdout.toString().trim() || undefined;
  }

  /** Kills the container (SIGKILL to its init) if it runs. One that is not running is not an error. */
  async kill(name: string): Promise<void> {
    const r = await run(this.bin.stop, ["-P", this.lxcpath, "-n", name, "-k"]);
    if (r.code === 0 || NOT_RUNNING.test(r.stderr.toString())) return;
    // lxc-stop exits 2 when the container was not running.
    if (r.code === 2) return;
    throw fail("lxc-stop -k", name, r);
  }

  async freeze(name: string): Promise<void> {
    const r = await run(required(this.bin.freeze, "lxc-freeze"), ["-P", this.lxcpath, "-n", name]);
    if (r.code !== 0) throw fail("lxc-freeze", name, r, "FAILED_PRECONDITION");
  }

  async unfreeze(name: string): Promise<void> {
    const r = await run(required(this.bin.unfreeze, "lxc-unfreeze"), ["-P", this.lxcpath, "-n", name]);
    if (r.code !== 0) throw fail("lxc-unfreeze", name, r, "FAILED_PRECONDITION");
  }

  /**
   * Runs `command` for `request` in the running container with exactly `env` (the
   * orchestrator's own is not passed on). lxc-attach exits with the command's status
   * (127/126 when it cannot run it, 128+N for death by signal N). It forwards no signal
   * (one kills lxc-attach and leaves the command running): the kit signals the command,
   * its child in the container's PID namespace. On a terminal (its stdin a tty, which
   * it must be able to open as /dev/tty) it gives the command a terminal of its own.
   */
  attach(name: string, request: ExecRequest, command: readonly string[], env: Readonly<Record<string, string>>): Promise<ExecProcess> {
    const vars = Object.entries(env).flatMap(([k, v]) => ["-v", `${k}=${v}`]);
    return spawnExec({
      request,
      argv: [required(this.bin.attach, "lxc-attach"), "-P", this.lxcpath, "-n", name, "--clear-env", ...vars, "--", ...command],
      // lxc-attach starts in the caller's cwd when that path exists in the container.
      cwd: "/",
      inContainer: true,
    });
  }

  /** `lxc-create -t TEMPLATE -f CONFIG`: the template builds a rootfs under the container's dir. */
  async create(name: string, template: string, configFile: string, templateArgs: readonly string[]): Promise<void> {
    const r = await run(required(this.bin.create, "lxc-create"), [
      "-P",
      this.lxcpath,
      "-n",
      name,
      "-t",
      template,
      "-f",
      configFile,
      ...(templateArgs.length > 0 ? ["--", ...templateArgs] : []),
    ]);
    if (r.code !== 0) throw fail(`lxc-create -t ${template}`, name, r, "FAILED_PRECONDITION");
  }

  /** `lxc-destroy`: removes the container's dir AND its rootfs. Only for template-made containers. */
  async destroy(name: string): Promise<void> {
    const r = await run(required(this.bin.destroy, "lxc-destroy"), ["-P", this.lxcpath, "-n", name]);
    if (r.code === 0 || NOT_RUNNING.test(r.stderr.toString())) return;
    throw fail("lxc-destroy", name, r);
  }

  /**
   * The command line that runs a container in the foreground: `lxc-execute` starts it
   * with init.lxc as PID 1, which runs the command, reaps, and exits with the command's
   * status (128+N for death by signal N); lxc-execute exits with that status.
   */
  executeCommand(name: string, logFile: string, args: readonly string[]): string[] {
    return [this.bin.execute, "-P", this.lxcpath, "-n", name, "-o", logFile, "-l", "ERROR", "-q", "--", ...args];
  }
}

function required(binary: string | undefined, name: string): string {
  if (binary === undefined) throw new VmctlError("FAILED_PRECONDITION", `${name} is not installed on this host`);
  return binary;
}

function run(binary: string, args: readonly string[]): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    execFile(binary, args, { encoding: "buffer", maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err && typeof (err as NodeJS.ErrnoException).code === "string") {
        reject(VmctlError.from(err, binary));
        return;
      }
      const code = err ? ((err as { code?: number | null }).code ?? null) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

function fail(what: string, name: string, r: ToolResult, code: "INTERNAL" | "FAILED_PRECONDITION" = "INTERNAL"): VmctlError {
  const message = lxcMessage(r.stderr.toString()) || `exit status ${r.code}`;
  return new VmctlError(code, `${what} ${name}: ${message}`);
}

/**
 * The root cause from LXC's error output: its first error line, without the
 * "tool: name: file: function: line" prefix (later lines only say "failed to start").
 */
export function lxcMessage(text: string): string {
  const lines = text.split("\n").map((l) => l.trim()).filter(Boolean);
  const first = lines.find((l) => / ERROR /.test(l)) ?? lines[0] ?? "";
  // Log file: "lxc-execute NAME TIME ERROR    conf - ../src/lxc/conf.c:fn:123 - message"
  const logged = / - [^ ]+:\d+ - (.*)$/.exec(first);
  if (logged?.[1]) return logged[1];
  // stderr: "lxc-execute: NAME: ../src/lxc/conf.c: fn: 123 message"
  const printed = /^[^:]+: [^:]+: [^:]+: [^:]+: \d+ (.*)$/.exec(first);
  return printed?.[1] ?? first;
}

/** LXC's root-cause error from its log file, if it logged one. */
export function lxcError(logFile: string): string | undefined {
  try {
    const text = readFileSync(logFile, "utf8");
    return text.trim() ? lxcMessage(text) : undefined;
  } catch {
    return undefined;
  }
}
