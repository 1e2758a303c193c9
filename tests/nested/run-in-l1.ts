// runInL1: boots L1 (Debian's kernel under QEMU TCG, `-cpu max`: an SVM CPU with nested
// paging), runs one command in a chroot of the host's own root with L1's /dev/kvm, and
// returns its exit status, stdout and stderr (files on a writable 9p share), L1's
// console and timings. QEMU never outlives the run: killed on timeout, on exceptions,
// and with the test process (reaper.ts).
import { existsSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { commandScript, type L1Command } from "./command-script.js";
import { ConsoleLog } from "./console-log.js";
import { L1BootError, L1TimeoutError, type L1Diagnostics } from "./errors.js";
import { ensureInitramfs } from "./initramfs.js";
import { makeIoDir } from "./io-dir.js";
import { requireL1Kernel, requireQemu } from "./paths.js";
import { qemuArgs } from "./qemu-args.js";
import { spawnTied } from "./reaper.js";

export interface L1Run {
  /** An argv exec'd inside L1, or a POSIX sh script (run by the chroot's /bin/sh). */
  readonly command: L1Command;
  /** Added to a clean environment (PATH, HOME=/root, TERM=dumb, LANG=C.UTF-8, VMCTL_L1=1). */
  readonly env?: Readonly<Record<string, string>>;
  /** Working directory inside L1 (default "/"); the host's paths are L1's paths. */
  readonly cwd?: string;
  /** Kill QEMU and fail after this long, boot included. */
  readonly timeoutMs: number;
  /**
   * Host directories made writable inside L1 at the same path (the rest of the host's
   * root is read-only with a throwaway tmpfs overlay): how results get back out.
   */
  readonly shareDirs?: readonly string[];
  /** L1's vCPUs (default 2) and memory in MiB (default 2048; the overlay lives in it). */
  readonly cpus?: number;
  readonly memMib?: number;
  /** Called with each console line as it arrives (e.g. t.log for a live view). */
  readonly onConsole?: (line: string) => void;
}

export interface L1Result {
  /** The command's exit status (128+N when killed by signal N, 125 if cwd is missing). */
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** L1's serial console: the kernel's warnings and /init's "vmctl-l1:" lines. */
  readonly console: string;
  /** QEMU start → the command starting inside L1 (host clock). */
  readonly bootMs: number;
  /** The command starting → its exit reported on the console (host clock). */
  readonly commandMs: number;
  /** QEMU start → QEMU gone. */
  readonly wallMs: number;
  /** `uname -r` of L1. */
  readonly kernelRelease: string;
  /** True when this run had to build the initramfs (the first run after a change). */
  readonly initramfsBuilt: boolean;
}

const CONSOLE_TAIL_LINES = 30;
/** Lines L1's /init prints (tests/nested/l1/init.sh). */
const RUN_LINE = /vmctl-l1: run uptime=/;
const EXIT_LINE = /vmctl-l1: exit=(\d+)/;
const FATAL_LINE = /vmctl-l1: FATAL: .*/;

/** Share paths go into QEMU options and the kernel command line: keep them plain. */
function checkSharePath(dir: string): string {
  const path = realpathSync(dir);
  if (!/^\/[A-Za-z0-9._+\-/]*$/.test(path)) {
    throw new Error(`runInL1: share path ${JSON.stringify(path)} must be absolute and use only [A-Za-z0-9._+-/]`);
  }
  return path;
}

function readIfPresent(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

export async function runInL1(run: L1Run): Promise<L1Result> {
  // Missing pieces fail here, before anything starts, with what to install.
  const qemu = requireQemu();
  const kernel = requireL1Kernel();
  const initramfs = ensureInitramfs(kernel);
  const shares = new Map((run.shareDirs ?? []).map((dir, i) => [`share${i}`, checkSharePath(dir)]));

  const io = makeIoDir();
  writeFileSync(join(io, "command.sh"), commandScript(run.command, run.env ?? {}, run.cwd ?? "/"));
  const cmdline = [
    "console=ttyS0",
    // Warnings and worse only: a clean boot prints little (serial output is slow under
    // TCG), a failing one still shows why.
    "loglevel=4",
    "panic=-1",
    `vmctl_moddir=${join(kernel.root, "lib/modules")}`,
    ...(shares.size ? [`vmctl_shares=${[...shares].map(([tag, path]) => `${tag}:${path}`).join(",")}`] : []),
  ].join(" ");
  const args = qemuArgs({
    kernel: kernel.vmlinux,
    initramfs: initramfs.path,
    cmdline,
    cpus: run.cpus ?? 2,
    memMib: run.memMib ?? 2048,
    readOnlyShares: new Map([["hostroot", "/"]]),
    writableShares: new Map([["io", io], ...shares]),
  });

  const started = performance.now();
  let commandStarted: number | undefined;
  let commandEnded: number | undefined;
  let fatal: string | undefined;
  const consoleLog = new ConsoleLog((line) => {
    if (commandStarted === undefined && RUN_LINE.test(line)) commandStarted = performance.now();
    if (commandEnded === undefined && EXIT_LINE.test(line)) commandEnded = performance.now();
    fatal ??= FATAL_LINE.exec(line)?.[0];
    run.onConsole?.(line);
  });
  let qemuStderr = "";

  const child = spawnTied(qemu, args, { stdio: ["ignore", "pipe", "pipe"] });
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => consoleLog.push(chunk));
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    qemuStderr = (qemuStderr + chunk).slice(-8192);
  });
  // Resolves once QEMU is gone *and* its output is drained ("close", not "exit").
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
    child.once("close", (code, signal) => resolve({ code, signal }));
    child.once("error", (error) => resolve({ code: null, signal: null, error }));
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill("SIGKILL");
  }, run.timeoutMs);

  const diagnostics = (): L1Diagnostics => ({
    consoleTail: consoleLog.tail(CONSOLE_TAIL_LINES),
    stdout: readIfPresent(join(io, "stdout")),
    stderr: readIfPresent(join(io, "stderr")),
  });

  try {
    const ended = await closed;
    const wallMs = performance.now() - started;
    if (ended.error) throw new Error(`runInL1: cannot start QEMU (${qemu}): ${ended.error.message}`);
    if (timedOut) {
      const d = diagnostics();
      const phase = commandStarted === undefined ? "while booting L1" : "while the command ran";
      throw new L1TimeoutError(
        `runInL1: timed out after ${run.timeoutMs} ms ${phase}; QEMU killed. ` +
          `Last console lines:\n${d.consoleTail}\n--- stderr tail:\n${d.stderr.slice(-2000)}`,
        d,
      );
    }
    const status = readIfPresent(join(io, "status")).trim();
    if (!/^\d+$/.test(status)) {
      const d = diagnostics();
      const how = ended.signal ? `signal ${ended.signal}` : `exit code ${ended.code}`;
      throw new L1BootError(
        `runInL1: L1 ended (QEMU ${how}) without reporting the command's exit status` +
          `${fatal ? ` — ${fatal}` : ""}. QEMU stderr: ${qemuStderr.trim() || "(none)"}. ` +
          `Last console lines:\n${d.consoleTail}`,
        d,
      );
    }
    return {
      code: Number(status),
      stdout: readIfPresent(join(io, "stdout")),
      stderr: readIfPresent(join(io, "stderr")),
      console: consoleLog.text,
      bootMs: (commandStarted ?? started) - started,
      commandMs: commandStarted !== undefined && commandEnded !== undefined ? commandEnded - commandStarted : 0,
      wallMs,
      kernelRelease: kernel.release,
      initramfsBuilt: initramfs.built,
    };
  } finally {
    clearTimeout(timer);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL");
      await closed;
    }
    if (existsSync(io)) rmSync(io, { recursive: true, force: true });
  }
}
