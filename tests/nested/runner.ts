// Where the Linux tests' L1 scripts run: inside L1 through the nested host (`npm test`,
// on these PVM machines), or straight on this host when its /dev/kvm is hardware
// virtualization (`npm run test:linux`, VMCTL_LINUX_RUNNER=host). The scripts are the
// same; only the machine under them changes.
import { spawn } from "node:child_process";
import { existsSync, realpathSync } from "node:fs";
import { constants, release } from "node:os";
import { performance } from "node:perf_hooks";
import { commandScript } from "./command-script.js";
import { L1TimeoutError } from "./errors.js";
import { runInL1, type L1Result, type L1Run } from "./run-in-l1.js";

export type RunnerKind = "nested" | "host";

export interface LinuxRunner {
  readonly kind: RunnerKind;
  /** How the test output names the machine ("L1 6.1.0-57-amd64 (nested)", "this host 6.8.0 (hardware KVM)"). */
  readonly describe: (r: L1Result) => string;
  readonly run: (run: L1Run) => Promise<L1Result>;
}

/** The one line `npm run test:linux` fails with on a PVM machine. */
export const PVM_REFUSAL =
  "test:linux: this host's /dev/kvm is PVM (/sys/module/kvm_pvm): Linux cannot boot here; use npm test, which boots Linux through the nested host";

/** Throws unless this host's KVM can boot Linux (a /dev/kvm that is not PVM). */
export function requireLinuxCapableKvm(): void {
  if (existsSync("/sys/module/kvm_pvm")) throw new Error(PVM_REFUSAL);
  if (!existsSync("/dev/kvm")) {
    throw new Error("test:linux: no /dev/kvm on this host (hardware virtualization off, or kvm_intel/kvm_amd not loaded); use npm test, which nests");
  }
}

/**
 * Runs the command on this host, with the same options and result as runInL1: the host
 * is "L1". shareDirs need nothing (the paths are already the host's); the environment
 * is this process's plus `env`. Killed (its whole process group) after timeoutMs.
 */
export async function runOnHost(run: L1Run): Promise<L1Result> {
  const script = commandScript(run.command, run.env ?? {}, run.cwd ?? "/");
  for (const dir of run.shareDirs ?? []) realpathSync(dir); // missing dirs fail as in runInL1
  const started = performance.now();
  const child = spawn("/bin/sh", ["-c", script], { stdio: ["ignore", "pipe", "pipe"], detached: true, env: process.env });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (c: string) => (stdout += c));
  child.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
  const killGroup = (): void => {
    try {
      process.kill(-(child.pid ?? 0), "SIGKILL");
    } catch {
      // Already gone.
    }
  };
  process.once("exit", killGroup);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup();
  }, run.timeoutMs);
  try {
    const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
      child.once("error", reject);
      child.once("close", (code, signal) => resolve({ code, signal }));
    });
    const wallMs = performance.now() - started;
    if (timedOut) {
      throw new L1TimeoutError(
        `runOnHost: timed out after ${run.timeoutMs} ms; the command's process group was killed.\n--- stderr tail:\n${stderr.slice(-2000)}`,
        { consoleTail: "", stdout, stderr },
      );
    }
    return {
      code: code ?? 128 + (signal ? constants.signals[signal] : 0),
      stdout,
      stderr,
      console: "",
      bootMs: 0,
      commandMs: wallMs,
      wallMs,
      kernelRelease: release(),
      initramfsBuilt: false,
    };
  } finally {
    clearTimeout(timer);
    process.off("exit", killGroup);
    killGroup();
  }
}

export const nestedRunner: LinuxRunner = {
  kind: "nested",
  describe: (r) =>
    `L1 ${r.kernelRelease} (nested, QEMU TCG): boot to command ${Math.round(r.bootMs)} ms, command ${Math.round(r.commandMs)} ms, QEMU wall ${Math.round(r.wallMs)} ms`,
  run: runInL1,
};

export const hostRunner: LinuxRunner = {
  kind: "host",
  describe: (r) => `this host ${r.kernelRelease} (hardware KVM, no nesting): command ${Math.round(r.wallMs)} ms`,
  run: async (run) => {
    requireLinuxCapableKvm();
    return runOnHost(run);
  },
};

/** VMCTL_LINUX_RUNNER=host (set by scripts/test-linux) runs on this host; anything else nests. */
export function selectedRunner(env: NodeJS.ProcessEnv = process.env): LinuxRunner {
  const kind = env.VMCTL_LINUX_RUNNER ?? "nested";
  if (kind === "host") return hostRunner;
  if (kind === "nested") return nestedRunner;
  throw new Error(`VMCTL_LINUX_RUNNER=${kind}: expected "nested" (default) or "host"`);
}

