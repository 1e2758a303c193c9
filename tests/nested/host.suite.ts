// The nested test host itself: L1 boots with an SVM KVM, a command's stdout, stderr and
// exit status come back, vmctl-vmm boots a test guest inside L1, and QEMU never
// outlives a run (timeout, or the test process killed). Serial: one QEMU at a time on
// these 2-core machines.
import test, { type ExecutionContext } from "ava";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { checkoutVmmBinary } from "@vmctl/vmm-client";
import {
  L1TimeoutError,
  liveTiedChildren,
  NestedHostMissingError,
  requireL1Kernel,
  runInL1,
  type L1Result,
} from "./index.js";

const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** Per-test wall time in the test's log, so slow runs show where the time went. */
function timed(t: ExecutionContext): () => void {
  const started = performance.now();
  return () => t.log(`test wall time: ${Math.round(performance.now() - started)} ms`);
}

function logTimings(t: ExecutionContext, r: L1Result): void {
  t.log(
    `L1 ${r.kernelRelease}: boot to command ${Math.round(r.bootMs)} ms, command ${Math.round(r.commandMs)} ms, ` +
      `QEMU wall ${Math.round(r.wallMs)} ms${r.initramfsBuilt ? " (initramfs built)" : ""}`,
  );
}

/** PIDs of processes whose parent is `ppid` (from /proc). */
function childrenOf(ppid: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // Field 4 (ppid) follows the parenthesised command name, which may hold spaces.
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[1]) === ppid) pids.push(Number(entry));
    } catch {
      // The process ended while we looked.
    }
  }
  return pids;
}

const isQemu = (pid: number): boolean => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("qemu-system");
  } catch {
    return false;
  }
};
/** QEMUs started by `ppid` (setpriv exec()s QEMU in place, so QEMU is a direct child). */
const qemuChildrenOf = (ppid: number): number[] => childrenOf(ppid).filter(isQemu);

const isAlive = (pid: number): boolean => existsSync(`/proc/${pid}`) && !readFileSync(`/proc/${pid}/stat`, "utf8").includes(") Z ");

test.serial("L1 boots with kvm_amd (npt=1) and /dev/kvm; stdout, stderr and exit code come back", async (t) => {
  t.timeout(60_000);
  const done = timed(t);
  const r = await runInL1({
    command: {
      script: [
        "echo out-line",
        "echo err-line >&2",
        "test -c /dev/kvm && echo kvm-device",
        'echo "npt=$(cat /sys/module/kvm_amd/parameters/npt)"',
        'echo "env=$GREETING cwd=$(pwd)"',
        "exit 7",
      ].join("\n"),
    },
    env: { GREETING: "it's here" },
    cwd: "/tmp",
    timeoutMs: 45_000,
  });
  logTimings(t, r);
  t.is(r.code, 7);
  t.is(r.stdout, `out-line\nkvm-device\nnpt=Y\nenv=it's here cwd=/tmp\n`);
  t.is(r.stderr, "err-line\n");
  t.regex(r.console, /vmctl-l1: exit=7/);
  done();
});

test.serial("vmctl-vmm runs inside L1 on L1's /dev/kvm and boots a test guest through its API", async (t) => {
  t.timeout(90_000);
  const done = timed(t);
  const vmm = checkoutVmmBinary() ?? join(REPO_ROOT, "target/x86_64-unknown-linux-gnu/release/vmctl-vmm");
  const guest = join(REPO_ROOT, "target/guests/vmctl-test-guest.elf");
  for (const built of [vmm, guest, join(REPO_ROOT, "ts/vmm-client/dist/index.js")]) {
    if (!existsSync(built)) t.fail(`${built} is missing: run \`npm run build\` first`);
  }
  const r = await runInL1({
    command: ["node", "tests/nested/l1/boot-test-guest.mjs", "hello"],
    cwd: REPO_ROOT,
    timeoutMs: 75_000,
  });
  logTimings(t, r);
  t.is(r.code, 0, `stderr: ${r.stderr}`);
  const outcome = JSON.parse(r.stdout.trim().split("\n").at(-1) ?? "{}") as {
    state: { phase: string; exit?: { reason: string; code: number } };
    console: string;
    bootDoneUs?: number;
    vmmSpawnMs: number;
    runMs: number;
    kvm: { device: boolean; kvmAmd: boolean; npt?: string; pvm: boolean };
  };
  t.log(`inside L1: vmctl-vmm API up in ${outcome.vmmSpawnMs} ms, guest Start → exit ${outcome.runMs} ms`);
  t.deepEqual(outcome.kvm, { device: true, kvmAmd: true, npt: "Y", pvm: false });
  t.is(outcome.state.phase, "exited");
  t.deepEqual(outcome.state.exit && { reason: outcome.state.exit.reason, code: outcome.state.exit.code }, {
    reason: "guest-exit",
    code: 0,
  });
  t.regex(outcome.console, /^vmctl-guest: hello PASS$/m);
  t.true((outcome.bootDoneUs ?? 0) > 0, "the guest's boot-done write was not recorded");
  done();
});

test.serial("a writable share brings files back to the host at the same path", async (t) => {
  t.timeout(60_000);
  const done = timed(t);
  const share = mkdtempSync(join(tmpdir(), "vmctl-nested-share-"));
  try {
    const r = await runInL1({
      command: { script: `uname -r > ${share}/release && touch /etc/l1-only` },
      shareDirs: [share],
      timeoutMs: 45_000,
    });
    logTimings(t, r);
    t.is(r.code, 0, r.stderr);
    t.is(readFileSync(join(share, "release"), "utf8").trim(), r.kernelRelease);
    // Everything else is an overlay over the read-only host root: writes stay in L1.
    t.false(existsSync("/etc/l1-only"));
  } finally {
    rmSync(share, { recursive: true, force: true });
  }
  done();
});

test.serial("a timeout kills QEMU and reports the last console lines", async (t) => {
  t.timeout(60_000);
  const done = timed(t);
  const started = performance.now();
  const err = await t.throwsAsync(
    runInL1({ command: { script: "echo about-to-hang; sleep 600" }, timeoutMs: 10_000 }),
    { instanceOf: L1TimeoutError },
  );
  t.log(`rejected after ${Math.round(performance.now() - started)} ms`);
  t.regex(err?.message ?? "", /timed out after 10000 ms while the command ran; QEMU killed/);
  t.regex(err?.message ?? "", /vmctl-l1: run uptime=/, "the console tail is in the message");
  t.is(err?.diagnostics.stdout, "about-to-hang\n", "the command's output so far is kept");
  t.is(liveTiedChildren(), 0);
  t.deepEqual(qemuChildrenOf(process.pid), [], "a QEMU of this test process is still there");
  done();
});

/**
 * Runs L1 in a separate Node process, kills that process with `signal` as soon as its
 * QEMU is up, and checks the QEMU goes too. SIGKILL leaves the runner no chance to
 * clean up (only the parent-death signal can act); SIGINT is Ctrl-C (the exit handlers).
 */
const diesWithRunner = test.macro(async (t, signal: NodeJS.Signals) => {
  t.timeout(60_000);
  const done = timed(t);
  const runner = spawn(
    process.execPath,
    [
      "--import=tsx",
      "--input-type=module",
      "-e",
      `import { runInL1 } from ${JSON.stringify(fileURLToPath(new URL("./index.ts", import.meta.url)))};
       await runInL1({ command: ["sleep", "600"], timeoutMs: 50000 });`,
    ],
    { stdio: ["ignore", "ignore", "pipe"], cwd: REPO_ROOT },
  );
  let stderr = "";
  runner.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const runnerExit = new Promise<NodeJS.Signals | number | null>((resolve) =>
    runner.once("exit", (code, sig) => resolve(sig ?? code)),
  );
  try {
    let qemu: number | undefined;
    for (const deadline = Date.now() + 30_000; qemu === undefined && Date.now() < deadline; ) {
      await sleep(100);
      qemu = qemuChildrenOf(runner.pid ?? -1)[0];
    }
    if (qemu === undefined) return t.fail(`QEMU never started; runner stderr:\n${stderr}`);
    t.log(`QEMU ${qemu} running under the runner ${runner.pid}; sending the runner ${signal}`);
    runner.kill(signal);
    t.is(await runnerExit, signal, `the runner did not end by ${signal}: ${stderr}`);
    const deadline = Date.now() + 5000;
    while (isAlive(qemu) && Date.now() < deadline) await sleep(50);
    t.false(isAlive(qemu), `QEMU ${qemu} outlived its parent`);
  } finally {
    runner.kill("SIGKILL");
    // The runner had no chance to remove its io dir (later runs sweep such orphans too).
    for (const name of readdirSync(tmpdir())) {
      if (name.startsWith(`vmctl-l1-io-${runner.pid}-`)) rmSync(join(tmpdir(), name), { recursive: true, force: true });
    }
  }
  done();
});

test.serial("QEMU dies with a test process that is SIGKILLed", diesWithRunner, "SIGKILL");
test.serial("QEMU dies with a test process interrupted by SIGINT (Ctrl-C)", diesWithRunner, "SIGINT");

test("a missing L1 kernel is a loud error that says how to get one", (t) => {
  const empty = mkdtempSync(join(tmpdir(), "vmctl-nested-empty-"));
  try {
    const err = t.throws(() => requireL1Kernel(empty), { instanceOf: NestedHostMissingError });
    t.regex(err?.message ?? "", /no L1 kernel at .*npm run setup/);
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
});
