// The shim: a small sh that is its own session leader (detached from the orchestrator),
// runs a runtime's foreground command with output to files, then records its exit
// status. Only a waiting parent learns a status, and Node cannot become a subreaper:
// a shell that outlives the orchestrator keeps it for whoever reads the files later.
import { spawn } from "node:child_process";
import { VmctlError } from "../../errors.js";
import { argvOf, startTimeOf, type ProcessRef } from "../process.js";

/** The files one shim writes. */
export interface ShimFiles {
  /** The shim's working directory; its changes wake whoever waits on the others. */
  readonly runDir: string;
  /** The shim's pid (written by the shim, and by the spawner right after spawning it). */
  readonly pidFile: string;
  readonly stdoutFile: string;
  readonly stderrFile: string;
  /** The command's exit status, written (by rename) when it ends. */
  readonly exitFile: string;
}

/** Who a shim is: argv[0] names the kind (`vmctl-oci-shim`), `tag` the service's instance. */
export interface ShimIdentity {
  readonly name: string;
  readonly tag: string;
}

// Runs as `sh -c SCRIPT NAME TAG PIDFILE STDOUT STDERR EXITFILE COMMAND...`. The pid is
// written by the shell itself (one small write: a reader sees nothing or all of it), with
// no child of its own: from then on the shim's only child is the command, which a target
// may signal as its children. The exit status is renamed into place: readers act on it.
const SCRIPT = [
  'pidf=$2 out=$3 err=$4 exitf=$5; shift 5',
  'echo $$ > "$pidf"',
  '"$@" </dev/null >>"$out" 2>>"$err"',
  'echo $? > "$exitf.tmp" && mv -f "$exitf.tmp" "$exitf"',
].join("\n");

/** Where the command runs: the run dir and this process's environment unless told. */
export interface ShimCommandOptions {
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
}

/** Spawns the shim for `command` in its own session; its pid and start time. */
export function spawnShim(who: ShimIdentity, files: ShimFiles, command: readonly string[], options: ShimCommandOptions = {}): ProcessRef {
  const child = spawn(
    "/bin/sh",
    ["-c", SCRIPT, who.name, who.tag, files.pidFile, files.stdoutFile, files.stderrFile, files.exitFile, ...command],
    { detached: true, stdio: "ignore", cwd: options.cwd ?? files.runDir, env: options.env ?? process.env },
  );
  child.on("error", () => undefined); // reported below: no pid
  child.unref();
  const pid = child.pid;
  if (pid === undefined) throw new VmctlError("INTERNAL", `could not spawn the ${who.name} (/bin/sh) for ${who.tag}`);
  // The shim cannot have exited yet: it waits for its command, which takes milliseconds at least.
  return { pid, startTime: startTimeOf(pid) ?? "" };
}

/**
 * `pid` is a live (not zombie) shim of this identity: guards against pid reuse. A shim
 * of an earlier release (argv without the tag in place) is still recognised by name and tag.
 */
export function isShim(pid: number, who: ShimIdentity): boolean {
  if (startTimeOf(pid) === undefined) return false;
  const argv = argvOf(pid);
  return argv !== undefined && argv[3] === who.name && argv.includes(who.tag);
}
