// vmctl's own guest kernel (images/kernel/build) booted by the host's release
// `vmctl-vmm`: inside L1 through the nested host (`npm test`, these PVM machines), or
// straight on a hardware-KVM host (`npm run test:linux`; runner.ts). Each test checks one
// case; all cases run in one batch, one L1 run (one L1 boot for every L2 boot):
//   - the VMM API step (l1/linux-cases.mjs): initramfs with the boot-done and exit-code
//     ports written from userspace and the console streamed both ways; 2 vCPUs; an ext4
//     root drive mounted read-write plus a read-only drive; Ctrl-Alt-Del → busybox
//     init's clean shutdown; bad input (not a kernel, an initrd bigger than memory, a panic);
//   - the orchestrator step (l1/linux-cli.mjs): `vmctl run --target microvm KERNEL`
//     through the built CLI, a vmctld (`vmctl daemon`) and the microvm plugin.
// Each case's result is a file in the batch's shared directory, written when the case
// ends: a test waits for its own case, not for the whole batch.
import test, { type ExecutionContext } from "ava";
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { createWritableLayer, prepareImage } from "@vmctl/native";
import { fileSha256, layoutFromTree } from "../images/fixtures/tree-image.js";
import { busyboxTree, debugfsCat, fsckReadOnly, makeExt4, packInitramfs } from "./guest-files.js";
import { requireGuestKernel, type GuestKernel } from "./guest-kernel.js";
import { liveTiedChildren, type L1Result } from "./index.js";
import { selectedRunner } from "./runner.js";
import type { ConformanceReport } from "@vmctl/plugin-conformance";

const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
const runner = selectedRunner();
const where = runner.kind === "nested" ? "in vmctl-vmm inside L1" : "in vmctl-vmm on this host";
/** `quiet`: warnings and errors only on the emulated UART (each byte is a VM exit). */
const BASE_ARGS = "console=ttyS0 quiet panic=-1";
const EXIT_CODE = 42;
const ECHO_TEXT = "hello from the host";

// ---------------------------------------------------------------------------------------
// The guests

/** The initramfs /init: the ports from userspace, facts the tests check, console input. */
const INITRAMFS_INIT = `#!/bin/busybox sh
/bin/busybox mount -t devtmpfs dev /dev
exec >/dev/console 2>&1 </dev/console
mount -t proc proc /proc
mount -t sysfs sys /sys
outb 0x600 1
echo "vmctl-linux: release $(uname -r)"
echo "vmctl-linux: version $(cat /proc/version)"
echo "vmctl-linux: online $(cat /sys/devices/system/cpu/online)"
echo "vmctl-linux: cpus $(grep -c ^processor /proc/cpuinfo)"
echo "vmctl-linux: uptime $(cut -d' ' -f1 /proc/uptime)"
case " $(cat /proc/cmdline) " in
*" vmctl.echo "*)
  echo "vmctl-linux: ready for input"
  read -r line
  echo "vmctl-linux: got [$line]"
  ;;
esac
outb 0x604 ${EXIT_CODE}
echo "vmctl-linux: still running after the exit port"
`;

/** The run's token (vmctl.token= on the command line): what the guest writes is this run's. */
const TOKEN = "token=$(sed -n 's/.*vmctl.token=\\([^ ]*\\).*/\\1/p' /proc/cmdline)";

/** Facts every rootfs script prints first. */
const ROOT_FACTS = `mount -t proc proc /proc
mount -t sysfs sys /sys
outb 0x600 1
echo "vmctl-linux: release $(uname -r)"
echo "vmctl-linux: pid1 $(cat /proc/1/comm)"
echo "vmctl-linux: root $(grep ' / ' /proc/mounts)"
${TOKEN}`;

/**
 * init= of the read-write root case: writes a file on the root drive, then tries every
 * way to write to the read-only drive /dev/vdb, puts the root back read-only (so the
 * image is consistent on the host) and exits through the port.
 */
const TEST_RW = `#!/bin/busybox sh
${ROOT_FACTS}
echo "written by the guest: $token" > /data/from-guest.txt
sync
echo "vmctl-linux: wrote $(cat /data/from-guest.txt)"
echo "vmctl-linux: vdb-ro $(cat /sys/block/vdb/ro)"
out=$(mount -t ext4 /dev/vdb /mnt 2>&1); echo "vmctl-linux: vdb-mount rc=$? $out"
echo "vmctl-linux: vdb-mounted $(grep ' /mnt ' /proc/mounts)"
echo "vmctl-linux: vdb-read $(cat /mnt/hello.txt)"
out=$(touch /mnt/new-file 2>&1); echo "vmctl-linux: vdb-touch rc=$? $out"
out=$(mount -o remount,rw /mnt 2>&1); echo "vmctl-linux: vdb-remount-rw rc=$? $out"
umount /mnt
out=$(dd if=/dev/zero of=/dev/vdb bs=4096 count=1 conv=fsync 2>&1 | tr '\\n' ' '); echo "vmctl-linux: vdb-dd $out"
out=$(mount -o remount,ro / 2>&1); echo "vmctl-linux: root-remount-ro rc=$? $out"
outb 0x604 7
`;

/**
 * init= of the image case, on the image's read-only base disk (/dev/vda): the VM's
 * writable layer (/dev/vdb) over it with overlayfs, as a guest agent does; writes through
 * the overlay (a new file, a deleted one, a changed one), then both disks put back clean.
 */
const TEST_IMAGE_OVERLAY = `#!/bin/busybox sh
${ROOT_FACTS}
mount -t devtmpfs dev /dev
echo "vmctl-linux: vda-ro $(cat /sys/block/vda/ro)"
out=$(mount -t ext4 /dev/vdb /scratch 2>&1); echo "vmctl-linux: scratch-mount rc=$? $out"
mkdir -p /scratch/upper /scratch/work
out=$(mount -t overlay overlay -o lowerdir=/,upperdir=/scratch/upper,workdir=/scratch/work /merged 2>&1); echo "vmctl-linux: overlay rc=$? $out"
echo "written in the VM: $token" > /merged/etc/from-vm.txt
rm /merged/etc/doomed
echo "changed in the VM" >> /merged/etc/changed
echo "vmctl-linux: merged $(cat /merged/etc/from-vm.txt) | $(cat /merged/etc/changed | tr '\\n' ' ')| doomed $(ls /merged/etc/doomed 2>&1 | grep -c 'No such')"
out=$(touch /etc/on-base 2>&1); echo "vmctl-linux: base-touch rc=$? $out"
sync
umount /merged
out=$(umount /scratch 2>&1); echo "vmctl-linux: scratch-umount rc=$? $out"
outb 0x604 9
`;

/** busybox init for the Ctrl-Alt-Del case: C-A-D → reboot → the shutdown action → reboot(2). */
const INITTAB = `::sysinit:/etc/rcS
::ctrlaltdel:/sbin/reboot
::shutdown:/etc/shutdown
`;
const RCS = `#!/bin/busybox sh
${ROOT_FACTS}
echo "booted: $token" > /data/cad.txt
echo "vmctl-linux: ready for ctrl-alt-del"
`;
const SHUTDOWN = `#!/bin/busybox sh
echo "vmctl-linux: shutdown: Ctrl-Alt-Del reached init"
${TOKEN}
echo "shut down cleanly: $token" >> /data/cad.txt
sync
out=$(mount -o remount,ro / 2>&1); echo "vmctl-linux: shutdown: root remount-ro rc=$? $out"
`;

/** init= of `vmctl run`: its environment comes from KEY=VALUE words on the command line. */
const TEST_CLI = `#!/bin/busybox sh
${ROOT_FACTS}
echo "vmctl-linux: hello from vmctl run, exit code $VMCTL_EXIT"
outb 0x604 "$VMCTL_EXIT"
`;

const ROOT_FILES = {
  "etc/test-rw": TEST_RW,
  "etc/inittab": INITTAB,
  "etc/rcS": RCS,
  "etc/shutdown": SHUTDOWN,
  "etc/test-cli": TEST_CLI,
};

// ---------------------------------------------------------------------------------------
// Batches: one L1 run each, results per case as files

interface CaseResult {
  name: string;
  harnessError?: string;
  configError?: { stage: string; code: string; message: string };
  startError?: { stage: string; code: string; message: string };
  stateAfterError?: { phase?: string; exit?: { reason: string; code: number; detail: string } };
  state?: { phase: string; exit?: { reason: string; code: number; detail: string } };
  timedOut?: boolean;
  console?: string;
  consoleChunks?: number;
  chunksBeforeExit?: number;
  firstOutputMs?: number;
  waitForMs?: number;
  waitForMissed?: string;
  ctrlAltDelAtMs?: number;
  ctrlAltDelToExitMs?: number;
  bootDoneUs?: number;
  runMs?: number;
  vmmSpawnMs?: number;
  vmExits?: Record<string, number>;
  block?: { driveId: string; readRequests: number; writeRequests: number; errors: number }[];
  vmmPid?: number;
  leftoverVmms: number[];
}

interface CliResult {
  name: string;
  leftoverFiles?: string[];
  code: number | string;
  timedOut: boolean;
  stdout: string;
  stderr: string;
  ms: number;
  leftoverVmms: number[];
}

interface DaemonResult {
  name: string;
  ready?: boolean;
  ms?: number;
  daemonGone?: boolean;
  logTail: string;
  leftoverVmms: number[];
}

interface Batch {
  readonly dir: string;
  readonly kernel: GuestKernel;
  /** Settles when the L1 run (QEMU included) is over. */
  readonly run: Promise<L1Result>;
  /** Waits for a case's result; fails after `deadlineMs` with L1's console so far. */
  result<T>(name: string, deadlineMs: number): Promise<T>;
}

/** One script of a batch, with the plan it is given (written to the batch's directory). */
interface Step {
  readonly script: string;
  readonly prepare: (dir: string, kernel: GuestKernel) => Record<string, unknown> | Promise<Record<string, unknown>>;
}

let batchDir: string | undefined;

/**
 * Builds every step's guests and plan, then runs the steps one after another in one L1
 * (or on this host), sharing the batch directory. All results land in DIR/results.
 */
function startBatch(label: string, steps: readonly Step[], timeoutMs: number): Batch {
  const kernel = requireGuestKernel();
  const dir = mkdtempSync(join(tmpdir(), "vmctl-linux-"));
  batchDir = dir;
  const resultsDir = join(dir, "results");
  mkdirSync(resultsDir);
  const plans = Promise.all(
    steps.map(async (step, i) => {
      const planPath = join(dir, `plan-${i}.json`);
      writeFileSync(planPath, JSON.stringify({ resultsDir, ...(await step.prepare(dir, kernel)) }));
      return `node ${step.script} ${planPath} || failed=1`;
    }),
  );
  const consoleLines: string[] = [];
  const run = plans.then((commands) =>
    runner.run({
      command: { script: ["failed=0", ...commands, "exit $failed"].join("\n") },
      cwd: REPO_ROOT,
      timeoutMs,
      shareDirs: [dir],
      onConsole: (l) => consoleLines.push(l),
    }),
  );
  let settled: { ok: true; value: L1Result } | { ok: false; error: unknown } | undefined;
  run.then(
    (value) => (settled = { ok: true, value }),
    (error: unknown) => (settled = { ok: false, error }),
  );
  return {
    dir,
    kernel,
    run,
    async result<T>(name: string, deadlineMs: number): Promise<T> {
      const file = join(resultsDir, `${name}.json`);
      const deadline = performance.now() + deadlineMs;
      for (;;) {
        if (performance.now() > deadline) {
          throw new Error(
            `${label}: no result for case "${name}" after ${deadlineMs} ms (the run goes on until its own timeout). ` +
              `Cases done: ${readdirSync(resultsDir).join(", ") || "none"}. L1 console so far:\n${consoleLines.slice(-30).join("\n")}`,
          );
        }
        if (existsSync(file)) return JSON.parse(readFileSync(file, "utf8")) as T;
        if (settled) {
          if (existsSync(file)) continue;
          if (!settled.ok) throw settled.error;
          const r = settled.value;
          throw new Error(
            `${label}: the run ended (exit ${r.code}) without a result for case "${name}".\n` +
              `stderr:\n${r.stderr.slice(-3000)}\nstdout:\n${r.stdout.slice(-2000)}\nconsole tail:\n${r.console.split("\n").slice(-30).join("\n")}`,
          );
        }
        await sleep(200);
      }
    },
  };
}

const sha256 = (path: string): string => createHash("sha256").update(readFileSync(path)).digest("hex");

/**
 * An image as users' images become disks: a busybox tree packed as an OCI layout, through
 * the native image engine (its read-only ext4 base) and a 64 MiB writable layer.
 */
async function prepareImageDisks(dir: string): Promise<{ base: string; baseHash: string; scratch: string }> {
  const tree = busyboxTree(join(dir, "image-root"), {
    "etc/test-overlay": TEST_IMAGE_OVERLAY,
    "etc/doomed": "deleted through the overlay\n",
    "etc/changed": "from the image\n",
  });
  for (const mount of ["scratch", "merged"]) mkdirSync(join(tree, mount));
  const layout = join(dir, "image-layout");
  await layoutFromTree(tree, layout, "overlay");
  const storeDir = join(dir, "images");
  const image = await prepareImage({ storeDir, source: `oci:${layout}:overlay` }, () => {});
  const scratch = join(dir, "scratch.ext4");
  await createWritableLayer({ storeDir, path: scratch, sizeBytes: 64 * 1024 * 1024 });
  return { base: image.disk, baseHash: fileSha256(image.disk), scratch };
}

/** The VMM API batch's guests and plan. */
async function prepareApiPlan(dir: string, kernel: GuestKernel): Promise<Record<string, unknown>> {
  const disks = await prepareImageDisks(dir);
  const initrd = packInitramfs(busyboxTree(join(dir, "initramfs-root"), { init: INITRAMFS_INIT }), join(dir, "initramfs.cpio"));
  const rootTree = busyboxTree(join(dir, "rootfs-root"), ROOT_FILES);
  const rootRw = makeExt4(rootTree, join(dir, "root-rw.ext4"), 32, "vmctl-root");
  copyFileSync(rootRw, join(dir, "root-cad.ext4"));
  const dataTree = join(dir, "data-root");
  mkdirSync(dataTree);
  writeFileSync(join(dataTree, "hello.txt"), "read-only data\n");
  const data = makeExt4(dataTree, join(dir, "data-ro.ext4"), 8, "vmctl-data");
  const notKernel = join(dir, "not-a-kernel");
  writeFileSync(notKernel, "this is a text file, neither an ELF vmlinux nor a bzImage\n".repeat(100));
  const bigInitrd = join(dir, "big-initrd.cpio");
  // Sparse: 192 MiB by its size, nothing on disk. Guest memory 128 MiB holds the kernel.
  execFileSync("truncate", ["-s", "192M", bigInitrd]);
  const token = `t${process.pid}${Date.now()}`;
  const k = kernel.vmlinux;
  return {
    token,
    dataHash: sha256(data),
    image: disks,
    cases: [
      { name: "initramfs", kernel: k, initrd, vcpus: 1, memMib: 256, bootArgs: `${BASE_ARGS} vmctl.echo`, waitFor: "vmctl-linux: ready for input", send: `${ECHO_TEXT}\n`, timeoutMs: 30_000 },
      { name: "smp", kernel: k, initrd, vcpus: 2, memMib: 256, bootArgs: BASE_ARGS, timeoutMs: 30_000 },
      {
        name: "rootfs",
        kernel: k,
        vcpus: 1,
        memMib: 256,
        bootArgs: `${BASE_ARGS} root=/dev/vda rw init=/etc/test-rw vmctl.token=${token}`,
        drives: [
          { driveId: "root", pathOnHost: rootRw, isRootDevice: true },
          { driveId: "data", pathOnHost: data, isReadOnly: true },
        ],
        timeoutMs: 30_000,
      },
      {
        name: "ctrl-alt-del",
        kernel: k,
        vcpus: 1,
        memMib: 256,
        bootArgs: `${BASE_ARGS} root=/dev/vda rw vmctl.token=${token}`,
        drives: [{ driveId: "root", pathOnHost: join(dir, "root-cad.ext4"), isRootDevice: true }],
        waitFor: "vmctl-linux: ready for ctrl-alt-del",
        ctrlAltDel: true,
        timeoutMs: 30_000,
        // The orchestrator's default stop grace (10 s): what `vmctl stop` gives a guest.
        graceMs: 10_000,
      },
      {
        name: "image-overlay",
        kernel: k,
        vcpus: 1,
        memMib: 256,
        bootArgs: `${BASE_ARGS} root=/dev/vda ro init=/etc/test-overlay vmctl.token=${token}`,
        drives: [
          { driveId: "rootfs", pathOnHost: disks.base, isReadOnly: true, isRootDevice: true },
          { driveId: "scratch", pathOnHost: disks.scratch },
        ],
        timeoutMs: 30_000,
      },
      { name: "not-a-kernel", kernel: notKernel, initrd, vcpus: 1, memMib: 256, bootArgs: BASE_ARGS },
      { name: "big-initrd", kernel: k, initrd: bigInitrd, vcpus: 1, memMib: 128, bootArgs: BASE_ARGS },
      // No drive at all, so root=/dev/vda cannot be mounted: Linux panics, panic=-1 reboots at once.
      { name: "panic", kernel: k, vcpus: 1, memMib: 256, bootArgs: `${BASE_ARGS} root=/dev/vda`, timeoutMs: 30_000 },
    ],
  };
}

/** What `vmctl run` runs in the default image through the guest agent. */
const IMAGE_COMMAND = "echo out; echo err >&2; exit 7";
/** What `vmctl exec` runs in the running image VM. */
const EXEC_COMMAND = "echo exec-out; echo exec-err >&2; echo host=$(hostname); exit 3";
/** The registry l1/linux-cli.mjs runs on L1's loopback, and the image it pushes there (an entrypoint and a cmd of its own). */
const REGISTRY_HOST = "127.0.0.1:5055";
const REGISTRY_ENTRYPOINT = ["/bin/sh", "-c", 'echo "entrypoint ran with $0"; cat /etc/image-marker; exit 9'];
const REGISTRY_CMD = ["the-image-cmd"];

async function prepareRegistryImage(dir: string): Promise<{ layout: string; tag: string; repository: string; host: string }> {
  const tree = busyboxTree(join(dir, "registry-root"), { "etc/image-marker": "from the image in the registry\n" });
  const layout = join(dir, "registry-layout");
  await layoutFromTree(tree, layout, "1", REGISTRY_CMD, REGISTRY_ENTRYPOINT);
  return { layout, tag: "1", repository: "vmctl-test/entry", host: REGISTRY_HOST };
}

/** The conformance kit's fixtures for Linux guests (the default image through the agent). */
const CONFORMANCE_FIXTURES = "tests/nested/l1/microvm-conformance.fixtures.mjs";
/** The whole kit inside L1: every check boots Linux guests (four at once in one). */
const CONFORMANCE_TIMEOUT_MS = 900_000;

/**
 * The workspace a `vmctl run -v` copies into an image VM: text, a Unicode name, a binary
 * of 3 MiB, a nested and an empty directory, a symlink. The command copies it whole into
 * the results directory (and lists its own checksums there); `--copy-out` brings that
 * back, where every file must hash as it did here.
 */
const WORKSPACE_FILES: Readonly<Record<string, string | Buffer>> = {
  "hello.txt": "hello from the host\n",
  "naïve café ☕.txt": "unicode name\n",
  "nested/deeper/data.bin": Buffer.from(Buffer.alloc(3 * 1024 * 1024).map((_, i) => (i * 2654435761) >>> 24)),
};
const WORKSPACE_COMMAND = "cd /src && mkdir -p out && cp -a in out/ && (cd in && find . -type f -exec sha256sum {} +) > out/guest-sums && ls -la out/in > out/listing";

function prepareWorkspace(dir: string): { source: string; results: string } {
  const source = join(dir, "workspace");
  for (const [name, content] of Object.entries(WORKSPACE_FILES)) {
    const path = join(source, "in", name);
    mkdirSync(join(path, ".."), { recursive: true });
    writeFileSync(path, content);
  }
  mkdirSync(join(source, "in", "empty"));
  execFileSync("ln", ["-s", "hello.txt", join(source, "in", "link")]);
  return { source, results: join(dir, "workspace-results") };
}

/** The network step's plan (l1/linux-network.mjs): a vmctld of its own, in a namespace of its own. */
function prepareNetworkPlan(): Record<string, unknown> {
  const stateDir = runner.kind === "nested" ? "/tmp/vmctl-l1-net-state" : join(batchDir!, "net-state");
  return { stateDir, socket: join(stateDir, "vmctld.sock") };
}

/** The orchestrator step's plan: `vmctl run` of a Linux on an ext4 root drive, and of a file that is no kernel. */
async function prepareCliPlan(dir: string, kernel: GuestKernel): Promise<Record<string, unknown>> {
  const workspace = prepareWorkspace(dir);
  const registry = await prepareRegistryImage(dir);
  const root = makeExt4(busyboxTree(join(dir, "cli-rootfs-root"), ROOT_FILES), join(dir, "root-cli.ext4"), 32, "vmctl-root");
  const notKernel = join(dir, "cli-not-a-kernel");
  writeFileSync(notKernel, "this is a text file, neither an ELF vmlinux nor a bzImage\n".repeat(100));
  const stateDir = runner.kind === "nested" ? "/tmp/vmctl-l1-state" : join(dir, "state");
  const spec = JSON.stringify({ drives: [{ id: "root", path: root, root: true }] });
  return {
    stateDir,
    socket: join(stateDir, "vmctld.sock"),
    daemonTimeoutMs: 60_000,
    registry,
    cases: [
      {
        name: "cli-run",
        args: ["run", "--rm", "--target", "microvm", "-e", "VMCTL_EXIT=23", "--spec", spec, kernel.vmlinux, "--", "root=/dev/vda", "rw", "init=/etc/test-cli", "quiet"],
        timeoutMs: 60_000,
      },
      // An image through the guest agent: the default image (busybox) on the default kernel.
      { name: "cli-image-run", args: ["run", "--rm", "--target", "microvm", "default", "--", "sh", "-c", IMAGE_COMMAND], timeoutMs: 180_000 },
      // Workspace in (-v, copied into the VM before the command), results out (--copy-out, after it).
      {
        name: "cli-image-workspace",
        args: ["run", "--rm", "--target", "microvm", "-v", `${workspace.source}:/src`, "--copy-out", `/src/out:${workspace.results}`, "default", "--", "sh", "-c", WORKSPACE_COMMAND],
        timeoutMs: 180_000,
      },
      // An image pulled from a registry on L1's loopback (l1/linux-cli.mjs pushes it there): its own entrypoint and cmd.
      { name: "cli-registry-run", args: ["run", "--rm", "--target", "microvm", `${REGISTRY_HOST}/${registry.repository}:${registry.tag}`], timeoutMs: 240_000 },
      { name: "cli-image-detach", args: ["run", "-d", "--name", "imgvm", "--target", "microvm", "default", "--", "sleep", "600"], timeoutMs: 120_000 },
      { name: "cli-image-exec", args: ["exec", "imgvm", "--", "sh", "-c", EXEC_COMMAND], timeoutMs: 60_000 },
      { name: "cli-image-exec-missing", args: ["exec", "imgvm", "--", "no-such-command"], timeoutMs: 60_000 },
      { name: "cli-image-exec-stdin", args: ["exec", "-i", "imgvm", "--", "wc", "-c"], input: "twelve bytes", timeoutMs: 60_000 },
      {
        name: "cli-image-exec-tty",
        args: ["exec", "-it", "imgvm", "--", "sh", "-c", 'tty; stty size; read line; echo "got:$line"'],
        terminal: { rows: 40, cols: 120 },
        input: "typed\r",
        timeoutMs: 60_000,
      },
      { name: "cli-image-stop", args: ["stop", "imgvm"], timeoutMs: 60_000 },
      { name: "cli-image-inspect", args: ["inspect", "imgvm"], timeoutMs: 30_000 },
      { name: "cli-image-rm", args: ["rm", "imgvm"], timeoutMs: 30_000 },
      { name: "cli-not-a-kernel", args: ["run", "--rm", "--target", "microvm", notKernel], timeoutMs: 30_000 },
      // The guest's OOM killer ends the workload (tail of an endless line keeps all of it).
      { name: "cli-image-oom", args: ["run", "--name", "oomvm", "--target", "microvm", "--spec", JSON.stringify({ memoryMib: 128 }), "default", "--", "tail", "/dev/zero"], timeoutMs: 180_000 },
      { name: "cli-image-oom-inspect", args: ["inspect", "oomvm"], timeoutMs: 30_000 },
      { name: "cli-image-oom-rm", args: ["rm", "oomvm"], timeoutMs: 30_000 },
      // A Linux that panics: no root device to mount, and no initramfs.
      { name: "cli-panic", args: ["run", "--rm", "--target", "microvm", kernel.vmlinux, "--", "root=/dev/vda", "quiet"], timeoutMs: 60_000 },
      // The plugin conformance kit against the microvm target, its services Linux guests
      // running the default image through the agent (the vmctld above plays no part).
      { name: "conformance-microvm", node: "ts/plugin-conformance/dist/cli.js", args: ["plugins/microvm", "--images", "--json", "--fixtures", CONFORMANCE_FIXTURES], timeoutMs: CONFORMANCE_TIMEOUT_MS },
    ],
  };
}

/**
 * The one batch: the VMM API cases, then the orchestrator's, in one L1 run (the L1 boot
 * and the first Node start paid once). Started by the first test that needs it.
 */
let batch: Batch | undefined;
const linux = (): Batch =>
  (batch ??= startBatch(
    "Linux batch (l1/linux-cases.mjs, l1/linux-cli.mjs)",
    [
      { script: "tests/nested/l1/linux-cases.mjs", prepare: prepareApiPlan },
      { script: "tests/nested/l1/linux-cli.mjs", prepare: prepareCliPlan },
      { script: "tests/nested/l1/linux-network.mjs", prepare: prepareNetworkPlan },
    ],
    1_800_000,
  ));

test.after.always("remove the batch's directory", async () => {
  await batch?.run.catch(() => undefined);
  if (batchDir) rmSync(batchDir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------
// Checks

function line(consoleText: string, key: string): string | undefined {
  return consoleText.match(new RegExp(`^vmctl-linux: ${key} (.*?)\\r?$`, "m"))?.[1];
}

/** Sets the test's timeout; returns the wait for its case, a little less, so the failure carries L1's console. */
function budget(t: ExecutionContext, ms: number): number {
  t.timeout(ms);
  return ms - 5_000;
}

/** Per-test wall time in the log. */
function timed(t: ExecutionContext): () => void {
  const started = performance.now();
  return () => t.log(`test wall time: ${Math.round(performance.now() - started)} ms`);
}

function logBoot(t: ExecutionContext, b: Batch, r: CaseResult): void {
  const c = r.console ?? "";
  t.log(
    `L2 kernel ${line(c, "release") ?? b.kernel.release} (vmctl's build, key ${b.kernel.key}) ${where}: ` +
      `Start → boot-done ${r.bootDoneUs ? `${(r.bootDoneUs / 1000).toFixed(0)} ms` : "never"}, Start → end ${r.runMs} ms (VMM up in ${r.vmmSpawnMs} ms)`,
  );
}

/** The case ran to an end state; otherwise fail with everything it said. */
function ended(t: ExecutionContext, r: CaseResult): r is CaseResult & { state: NonNullable<CaseResult["state"]> } {
  if (r.harnessError || r.configError || r.startError || !r.state) {
    t.fail(`case ${r.name} did not run: ${JSON.stringify({ ...r, console: undefined })}\n${r.console ?? ""}`);
    return false;
  }
  return true;
}

function noVmmLeft(t: ExecutionContext, r: { leftoverVmms: number[] }): void {
  t.deepEqual(r.leftoverVmms, [], "vmctl-vmm processes still running after the case");
}

/** Checks QEMU is gone once the batch's run is over (nested runs only). */
async function noQemuLeft(t: ExecutionContext, b: Batch): Promise<void> {
  const r = await b.run;
  t.log(runner.describe(r));
  t.is(liveTiedChildren(), 0, "a QEMU of this test process is still running");
}

// ---------------------------------------------------------------------------------------
// The VMM API batch

test.serial(`vmctl's kernel boots with an initramfs ${where}: boot-done and exit code from userspace, console streamed`, async (t) => {
  const deadline = budget(t, 90_000);
  const done = timed(t);
  const b = linux();
  const r = await b.result<CaseResult>("initramfs", deadline);
  if (!ended(t, r)) return;
  logBoot(t, b, r);
  const c = r.console ?? "";
  t.is(r.state.exit?.reason, "guest-exit", `${r.state.exit?.detail}\n${c}`);
  t.is(r.state.exit?.code, EXIT_CODE, c);
  t.false(c.includes("still running after the exit port"));
  t.true((r.bootDoneUs ?? 0) > 0, "boot-done port written from userspace");
  t.true((r.bootDoneUs ?? 0) / 1000 <= (r.runMs ?? 0));
  t.is(line(c, "release"), b.kernel.release, "the kernel booted is the one images/kernel/build made");
  t.regex(line(c, "version") ?? "", /^Linux version /);
  // Streamed: the guest's lines came while it ran (it waited for our input after
  // printing them), and our input reached its shell through the UART.
  t.true(r.waitForMs !== undefined && r.waitForMs < (r.runMs ?? 0), `"ready for input" never seen while the VM ran: ${r.waitForMissed}`);
  t.true((r.chunksBeforeExit ?? 0) > 0);
  t.is(line(c, "got"), `[${ECHO_TEXT}]`, c);
  t.false(/Kernel panic|BUG:|Oops/.test(c), c);
  t.log(`console: first output ${r.firstOutputMs} ms after Start, "ready for input" at ${r.waitForMs} ms, ${r.consoleChunks} chunks`);
  noVmmLeft(t, r);
  done();
});

test.serial(`vmctl's kernel brings 2 vCPUs online ${where}`, async (t) => {
  const deadline = budget(t, 45_000);
  const done = timed(t);
  const b = linux();
  const r = await b.result<CaseResult>("smp", deadline);
  if (!ended(t, r)) return;
  logBoot(t, b, r);
  const c = r.console ?? "";
  t.is(r.state.exit?.reason, "guest-exit", `${r.state.exit?.detail}\n${c}`);
  t.is(r.state.exit?.code, EXIT_CODE, c);
  t.is(line(c, "online"), "0-1", c);
  t.is(line(c, "cpus"), "2", c);
  noVmmLeft(t, r);
  done();
});

test.serial(`vmctl's kernel mounts an ext4 root drive read-write ${where}; the guest's writes are in the host's image`, async (t) => {
  const deadline = budget(t, 45_000);
  const done = timed(t);
  const b = linux();
  const r = await b.result<CaseResult>("rootfs", deadline);
  if (!ended(t, r)) return;
  logBoot(t, b, r);
  const c = r.console ?? "";
  const token = (JSON.parse(readFileSync(join(b.dir, "plan-0.json"), "utf8")) as { token: string }).token;
  t.is(r.state.exit?.reason, "guest-exit", `${r.state.exit?.detail}\n${c}`);
  t.is(r.state.exit?.code, 7, c);
  t.regex(line(c, "root") ?? "", /^\/dev\/root \/ ext4 rw[, ]/, c);
  t.is(line(c, "wrote"), `written by the guest: ${token}`, c);
  t.regex(line(c, "root-remount-ro") ?? "", /^rc=0/, c);
  // On the host, from the image itself (not mounted: debugfs reads the ext4 directly).
  const image = join(b.dir, "root-rw.ext4");
  t.is(debugfsCat(image, "/data/from-guest.txt"), `written by the guest: ${token}\n`);
  const fsck = fsckReadOnly(image);
  t.is(fsck.code, 0, `e2fsck -fn: ${fsck.output}`);
  const root = r.block?.find((d) => d.driveId === "root");
  t.true((root?.writeRequests ?? 0) > 0, JSON.stringify(r.block));
  noVmmLeft(t, r);
  done();
});

test.serial(`an image's disks ${where}: the writable layer over the read-only base with overlayfs; the VM's writes land in the layer only`, async (t) => {
  const deadline = budget(t, 45_000);
  const done = timed(t);
  const b = linux();
  const r = await b.result<CaseResult>("image-overlay", deadline);
  if (!ended(t, r)) return;
  logBoot(t, b, r);
  const c = r.console ?? "";
  const plan = JSON.parse(readFileSync(join(b.dir, "plan-0.json"), "utf8")) as { token: string; image: { base: string; baseHash: string; scratch: string } };
  t.is(r.state.exit?.code, 9, `${r.state.exit?.detail}\n${c}`);
  t.regex(line(c, "root") ?? "", /^\/dev\/root \/ ext4 ro[, ]/, c);
  t.is(line(c, "vda-ro"), "1", c);
  t.regex(line(c, "scratch-mount") ?? "", /^rc=0/, c);
  t.regex(line(c, "overlay") ?? "", /^rc=0/, c);
  t.is(line(c, "merged"), `written in the VM: ${plan.token} | from the image changed in the VM | doomed 1`, c);
  t.regex(line(c, "base-touch") ?? "", /^rc=1 .*Read-only file system/, c);
  t.regex(line(c, "scratch-umount") ?? "", /^rc=0/, c);
  // On the host: the base disk is byte for byte what the engine built; the layer holds
  // the VM's writes as overlayfs left them (a new file, a copied-up file, a whiteout).
  t.is(sha256(plan.image.base), plan.image.baseHash, "the base disk changed");
  t.is(debugfsCat(plan.image.scratch, "/upper/etc/from-vm.txt"), `written in the VM: ${plan.token}\n`);
  t.is(debugfsCat(plan.image.scratch, "/upper/etc/changed"), "from the image\nchanged in the VM\n");
  const whiteout = execFileSync("debugfs", ["-R", "stat /upper/etc/doomed", plan.image.scratch], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  t.regex(whiteout, /Type: character special/, "overlayfs records the deletion as a 0/0 character device");
  const fsck = fsckReadOnly(plan.image.scratch);
  t.is(fsck.code, 0, `e2fsck -fn of the writable layer: ${fsck.output}`);
  const scratch = r.block?.find((d) => d.driveId === "scratch");
  const rootfs = r.block?.find((d) => d.driveId === "rootfs");
  t.true((scratch?.writeRequests ?? 0) > 0, JSON.stringify(r.block));
  t.is(rootfs?.writeRequests ?? 0, 0, JSON.stringify(r.block));
  noVmmLeft(t, r);
  done();
});

test.serial(`a read-only drive refuses writes ${where} and its image is unchanged`, async (t) => {
  const deadline = budget(t, 45_000);
  const done = timed(t);
  const b = linux();
  const r = await b.result<CaseResult>("rootfs", deadline);
  if (!ended(t, r)) return;
  const c = r.console ?? "";
  const plan = JSON.parse(readFileSync(join(b.dir, "plan-0.json"), "utf8")) as { dataHash: string };
  t.is(line(c, "vdb-ro"), "1", `the guest's block layer sees /dev/vdb read-only\n${c}`);
  // mount without -o ro: the kernel refuses write access; busybox retries read-only.
  t.regex(line(c, "vdb-mounted") ?? "", /^\/dev\/vdb \/mnt ext4 ro[, ]/, c);
  t.is(line(c, "vdb-read"), "read-only data", c);
  t.regex(line(c, "vdb-touch") ?? "", /^rc=1 .*Read-only file system/, c);
  t.regex(line(c, "vdb-remount-rw") ?? "", /^rc=[1-9]/, c);
  t.regex(line(c, "vdb-dd") ?? "", /Operation not permitted|Read-only file system|Permission denied/, c);
  t.is(sha256(join(b.dir, "data-ro.ext4")), plan.dataHash, "the read-only image changed");
  const data = r.block?.find((d) => d.driveId === "data");
  t.is(data?.writeRequests ?? 0, 0, JSON.stringify(r.block));
  t.true((data?.readRequests ?? 0) > 0, JSON.stringify(r.block));
  done();
});

test.serial(`Ctrl-Alt-Del reaches busybox init ${where}, which shuts down cleanly and ends the VM`, async (t) => {
  const deadline = budget(t, 45_000);
  const done = timed(t);
  const b = linux();
  const r = await b.result<CaseResult>("ctrl-alt-del", deadline);
  if (!ended(t, r)) return;
  logBoot(t, b, r);
  const c = r.console ?? "";
  const token = (JSON.parse(readFileSync(join(b.dir, "plan-0.json"), "utf8")) as { token: string }).token;
  t.is(line(c, "pid1"), "init", c);
  t.true(r.ctrlAltDelAtMs !== undefined, `never got to send Ctrl-Alt-Del: ${r.waitForMissed} (${JSON.stringify(r.state)})\n${c}`);
  t.falsy(r.timedOut, `the VM did not end within the grace after Ctrl-Alt-Del\n${c}`);
  // Linux without ACPI ends a reboot through the i8042 reset line: the VMM reports
  // `reset` (what the microvm target maps to a clean exit, code 0).
  t.is(r.state.exit?.reason, "reset", `${r.state.exit?.detail}\n${c}`);
  t.regex(r.state.exit?.detail ?? "", /i8042/);
  t.regex(c, /vmctl-linux: shutdown: Ctrl-Alt-Del reached init/);
  t.regex(line(c, "shutdown: root remount-ro") ?? "", /^rc=0/, c);
  t.regex(c, /reboot: Restarting system/, c);
  t.false(/Kernel panic/.test(c), c);
  t.log(`Ctrl-Alt-Del sent ${r.ctrlAltDelAtMs} ms after Start; the VM ended ${r.ctrlAltDelToExitMs} ms later`);
  const image = join(b.dir, "root-cad.ext4");
  t.is(debugfsCat(image, "/data/cad.txt"), `booted: ${token}\nshut down cleanly: ${token}\n`);
  const fsck = fsckReadOnly(image);
  t.is(fsck.code, 0, `the root file system was not left clean: e2fsck -fn: ${fsck.output}`);
  noVmmLeft(t, r);
  done();
});

test.serial(`a kernel that is neither ELF nor bzImage is refused ${where}, no VMM left`, async (t) => {
  const deadline = budget(t, 30_000);
  const done = timed(t);
  const r = await linux().result<CaseResult>("not-a-kernel", deadline);
  t.is(r.configError?.stage, "putBootSource", JSON.stringify(r));
  t.is(r.configError?.code, "INVALID_ARGUMENT", JSON.stringify(r));
  t.regex(r.configError?.message ?? "", /boot_source\.kernel_image_path/);
  t.log(`refused: ${r.configError?.message}`);
  noVmmLeft(t, r);
  done();
});

test.serial(`an initrd larger than guest memory is refused ${where}, no VMM left`, async (t) => {
  const deadline = budget(t, 30_000);
  const done = timed(t);
  const r = await linux().result<CaseResult>("big-initrd", deadline);
  const error = r.configError ?? r.startError;
  t.truthy(error, `the VM ran: ${JSON.stringify({ ...r, console: undefined })}`);
  t.regex(error?.message ?? "", /initrd/);
  t.regex(error?.message ?? "", /does not fit/);
  t.log(`refused at ${error?.stage}: ${error?.message}; state then: ${JSON.stringify(r.stateAfterError)}`);
  noVmmLeft(t, r);
  done();
});

test.serial(`a kernel that panics ${where} ends the VM, the panic on the console; no VMM left`, async (t) => {
  const deadline = budget(t, 45_000);
  const done = timed(t);
  const b = linux();
  const r = await b.result<CaseResult>("panic", deadline);
  if (!ended(t, r)) return;
  logBoot(t, b, r);
  const c = r.console ?? "";
  t.falsy(r.timedOut, c);
  // panic=-1: Linux reboots at once, through the i8042 reset line.
  t.is(r.state.exit?.reason, "reset", `${r.state.exit?.detail}\n${c}`);
  t.regex(c, /Kernel panic - not syncing: VFS: Unable to mount root fs/, c);
  t.log(`ended: ${r.state.exit?.reason} (${r.state.exit?.detail}); ${c.match(/Kernel panic.*$/m)?.[0]}`);
  noVmmLeft(t, r);
  done();
});

// ---------------------------------------------------------------------------------------
// The orchestrator step

test.serial(`vmctl run --target microvm KERNEL ${runner.kind === "nested" ? "inside L1" : "on this host"} returns the guest's exit code`, async (t) => {
  const deadline = budget(t, 90_000);
  const done = timed(t);
  const b = linux();
  const daemon = await b.result<DaemonResult>("daemon-started", deadline);
  if (!daemon.ready) return t.fail(`vmctld did not come up within the step's wait (${daemon.ms} ms):\n${daemon.logTail}`);
  const r = await b.result<CliResult>("cli-run", deadline);
  t.log(`vmctld (vmctl daemon) serving after ${daemon.ms} ms; vmctl run (Linux on an ext4 root drive): ${r.ms} ms`);
  t.false(r.timedOut, r.stderr);
  t.is(r.code, 23, `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  t.regex(r.stdout, /vmctl-linux: hello from vmctl run, exit code 23/, "the guest's console is the run's output");
  t.regex(r.stdout, new RegExp(`vmctl-linux: release ${b.kernel.release.replace(/[.+]/g, "\\$&")}`));
  noVmmLeft(t, r);
  done();
});

test.serial(`vmctl run --rm --target microvm default -- CMD ${runner.kind === "nested" ? "inside L1" : "on this host"}: the guest agent runs it, stdout and stderr apart, its exit code; nothing left`, async (t) => {
  const deadline = budget(t, 240_000);
  const done = timed(t);
  const b = linux();
  const r = await b.result<CliResult>("cli-image-run", deadline);
  t.log(`vmctl run --rm --target microvm default (image pulled, agent, vsock): ${r.ms} ms`);
  t.false(r.timedOut, r.stderr);
  t.is(r.code, 7, `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  t.is(r.stdout, "out\n", "the workload's stdout, and nothing else, on stdout");
  t.regex(r.stderr, /^err$/m, "the workload's stderr on stderr");
  t.false(/\bout\b/.test(r.stderr), r.stderr);
  noVmmLeft(t, r);
  t.deepEqual(r.leftoverFiles, [], "sockets, writable layer or output files left");
  done();
});

test.serial(`vmctl run --rm --target microvm of an image pulled from a registry on L1's loopback ${runner.kind === "nested" ? "inside L1" : "on this host"}: its own entrypoint and cmd run; nothing left`, async (t) => {
  const deadline = budget(t, 300_000);
  const done = timed(t);
  const b = linux();
  const pushed = await b.result<StepResult>("registry-ready", deadline);
  t.is(pushed.code, 0, `the registry or the push failed:\n${pushed.stdout}\n${pushed.stderr}`);
  const r = await b.result<CliResult>("cli-registry-run", deadline);
  t.log(`vmctl run --rm ${REGISTRY_HOST}/vmctl-test/entry:1 (pull, disk, boot, agent): ${r.ms} ms`);
  t.is(r.code, 9, `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  t.regex(r.stdout, /^entrypoint ran with the-image-cmd$/m, "the image's entrypoint ran with its cmd");
  t.regex(r.stdout, /^from the image in the registry$/m, "in the image's own root");
  noVmmLeft(t, r);
  t.deepEqual(r.leftoverFiles, [], "sockets, writable layer or output files left");
  done();
});

test.serial(`vmctl exec into a running image VM ${runner.kind === "nested" ? "inside L1" : "on this host"}: output and code through the agent, stdin with -i, a PTY of the terminal's size with -it; stop ends the workload; rm leaves nothing`, async (t) => {
  const deadline = budget(t, 240_000);
  const done = timed(t);
  const b = linux();
  const started = await b.result<CliResult>("cli-image-detach", deadline);
  t.is(started.code, 0, `run -d:\n${started.stdout}\n${started.stderr}`);
  const r = await b.result<CliResult>("cli-image-exec", deadline);
  t.log(`run -d ${started.ms} ms; exec ${r.ms} ms`);
  t.is(r.code, 3, `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  t.regex(r.stdout, /^exec-out$/m);
  t.regex(r.stdout, /^host=imgvm|^host=\S+$/m);
  t.is(r.stderr, "exec-err\n");
  const missing = await b.result<CliResult>("cli-image-exec-missing", deadline);
  t.is(missing.code, 127, missing.stderr);
  t.regex(missing.stderr, /no-such-command/);
  const piped = await b.result<CliResult>("cli-image-exec-stdin", deadline);
  t.is(piped.code, 0, piped.stderr);
  t.is(piped.stdout.trim(), "12", "vmctl exec -i passes stdin, and its end");
  // vmctl on a terminal (script(1)) of 40x120: the guest command gets a PTY of that size.
  const tty = await b.result<CliResult>("cli-image-exec-tty", deadline);
  t.log(`exec -it ${tty.ms} ms: ${JSON.stringify(tty.stdout)}`);
  t.is(tty.code, 0, `stdout:\n${tty.stdout}\nstderr:\n${tty.stderr}`);
  t.regex(tty.stdout, /\/dev\/pts\/\d+/, "the command's stdin is a PTY in the guest");
  t.regex(tty.stdout, /40 120/, "of the terminal's size");
  t.regex(tty.stdout, /got:typed/, "typed input reaches it");
  const stopped = await b.result<CliResult>("cli-image-stop", deadline);
  t.log(`stop ${stopped.ms} ms: ${stopped.stdout.trim()} ${stopped.stderr.trim()}`);
  t.is(stopped.code, 0, stopped.stderr);
  const inspect = await b.result<CliResult>("cli-image-inspect", deadline);
  t.log(`after stop: ${inspect.stdout.match(/"exit"[^}]*}/s)?.[0] ?? inspect.stdout.slice(0, 400)}`);
  t.regex(inspect.stdout, /SIGTERM|stopped/, "the workload ended by the stop's SIGTERM");
  noVmmLeft(t, stopped);
  const removed = await b.result<CliResult>("cli-image-rm", deadline);
  t.is(removed.code, 0, removed.stderr);
  t.deepEqual(removed.leftoverFiles, [], "sockets, writable layer or output files left after rm");
  done();
});

test.serial(`vmctl run -v DIR:/src --copy-out /src/out:DEST --target microvm default ${runner.kind === "nested" ? "inside L1" : "on this host"}: a workspace round trip keeps every file's checksum; nothing left`, async (t) => {
  const deadline = budget(t, 240_000);
  const done = timed(t);
  const b = linux();
  const r = await b.result<CliResult>("cli-image-workspace", deadline);
  t.log(`vmctl run -v … --copy-out … (copy in, command, copy out): ${r.ms} ms`);
  t.is(r.code, 0, `stdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
  const results = join(b.dir, "workspace-results");
  const sha = (path: string): string => createHash("sha256").update(readFileSync(path)).digest("hex");
  for (const name of Object.keys(WORKSPACE_FILES)) {
    const expected = sha(join(b.dir, "workspace", "in", name));
    t.is(sha(join(results, "in", name)), expected, `${name} came back unchanged`);
    // What the command saw in the VM, by its own sha256sum.
    t.regex(readFileSync(join(results, "guest-sums"), "utf8"), new RegExp(`^${expected}  \\./${name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`, "m"), `${name} was copied in unchanged`);
  }
  t.true(existsSync(join(results, "in", "empty")), "the empty directory made the round trip");
  t.is(execFileSync("readlink", [join(results, "in", "link")], { encoding: "utf8" }).trim(), "hello.txt", "the symlink stays a symlink");
  noVmmLeft(t, r);
  t.deepEqual(r.leftoverFiles, [], "sockets, writable layer or captured copies left");
  done();
});

test.serial(`a workload the guest's OOM killer ends ${runner.kind === "nested" ? "inside L1" : "on this host"}: reason oom, SIGKILL's exit code; a panicking guest: its panic line; nothing left`, async (t) => {
  const deadline = budget(t, 300_000);
  const done = timed(t);
  const b = linux();
  const oom = await b.result<CliResult>("cli-image-oom", deadline);
  t.log(`OOM run ${oom.ms} ms, exit ${oom.code}: ${oom.stderr.trim().slice(-300)}`);
  t.is(oom.code, 137, `stdout:\n${oom.stdout.slice(-500)}\nstderr:\n${oom.stderr}`);
  const inspect = await b.result<CliResult>("cli-image-oom-inspect", deadline);
  const exit = (JSON.parse(inspect.stdout) as { exit?: { reason?: string; signal?: string; detail?: string } }[])[0]?.exit;
  t.is(exit?.reason, "oom", inspect.stdout);
  t.is(exit?.signal, "SIGKILL");
  const removed = await b.result<CliResult>("cli-image-oom-rm", deadline);
  t.is(removed.code, 0, removed.stderr);
  noVmmLeft(t, removed);
  t.deepEqual(removed.leftoverFiles, [], "files left after rm");
  const panic = await b.result<CliResult>("cli-panic", deadline);
  t.log(`panic run ${panic.ms} ms, exit ${panic.code}: ${panic.stderr.trim()}`);
  t.is(panic.code, 125, panic.stderr);
  t.regex(panic.stderr, /panic/i, "the CLI says the guest panicked");
  t.regex(panic.stderr, /VFS|root|not syncing/i, "and quotes the panic line");
  noVmmLeft(t, panic);
  t.deepEqual(panic.leftoverFiles, []);
  done();
});

test.serial(`the plugin conformance kit passes against the microvm target with Linux guests ${runner.kind === "nested" ? "inside L1" : "on this host"} (the default image, the agent); nothing left`, async (t) => {
  const deadline = budget(t, CONFORMANCE_TIMEOUT_MS + 600_000);
  const done = timed(t);
  const b = linux();
  const r = await b.result<CliResult>("conformance-microvm", deadline);
  let report: ConformanceReport;
  try {
    report = JSON.parse(r.stdout) as ConformanceReport;
  } catch {
    return t.fail(`vmctl-conformance exited ${r.code} in ${r.ms} ms without a report:\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-3000)}`);
  }
  t.log(`vmctl-conformance (${report.checks.length} checks) in ${r.ms} ms`);
  for (const c of report.checks) t.log(`${c.status} ${c.name} (${c.durationMs} ms)${c.reason ? `: ${c.reason.slice(0, 300)}` : ""}`);
  t.deepEqual(
    report.checks.filter((c) => c.status !== "pass").map((c) => `${c.status} ${c.name}: ${c.reason ?? ""}`),
    [],
    `every check passes, exec and copy included:\n${r.stderr.slice(-2000)}`,
  );
  t.true(report.ok);
  t.is(r.code, 0);
  for (const claimed of ["capabilities/exec", "capabilities/copy", "adopt/running", "run/spec-from-run"]) {
    t.true(report.checks.some((c) => c.name === claimed && c.status === "pass"), `${claimed} ran and passed`);
  }
  noVmmLeft(t, r);
  done();
});

interface StepResult {
  name: string;
  code?: number | string;
  stdout?: string;
  stderr?: string;
  ms?: number;
  ready?: boolean;
  logTail?: string;
  leftoverVmms?: number[];
  entries?: { kind: string; from?: string; url?: string; qname?: string }[];
}

test.serial(`a microVM on a vmctl network ${runner.kind === "nested" ? "inside L1" : "on this host"}: its address, a name resolved by the network's resolver, a file fetched through NAT, a published port answering from the host and from outside; nothing left`, async (t) => {
  const deadline = budget(t, CONFORMANCE_TIMEOUT_MS + 900_000);
  const done = timed(t);
  const b = linux();
  const r = (name: string) => b.result<StepResult>(`net-${name}`, deadline);
  const show = (s: StepResult) => `exit ${s.code} in ${s.ms} ms\nstdout:\n${s.stdout}\nstderr:\n${s.stderr}`;
  t.is((await r("namespaces")).code, 0, show(await r("namespaces")));
  const daemon = await r("daemon-started");
  if (!daemon.ready) return t.fail(`vmctld in the vmhost namespace did not come up:\n${daemon.logTail}`);
  const created = await r("network-create");
  t.is(created.code, 0, show(created));
  const run = await r("run");
  t.log(`vmctl run -d --network testnet -p 8080:80: ${run.ms} ms`);
  t.is(run.code, 0, show(run));
  const logs = await r("logs");
  t.log(`the guest said:\n${logs.stdout}${logs.stderr}`);
  const inspect = await r("inspect");
  const service = (JSON.parse(inspect.stdout ?? "[]") as { network?: { address?: string; gateway?: string; dns?: string[] } }[])[0];
  const address = service?.network?.address;
  t.truthy(address, `inspect shows the service's address:\n${inspect.stdout}`);
  t.regex(logs.stdout ?? "", new RegExp(`inet ${(address ?? "none").replace(/\./g, "\\.")}/`), "the guest's eth0 has the leased address");
  t.regex(logs.stdout ?? "", /nameserver 198\.51\.100\.2/, "resolv.conf names the network's resolver");
  t.regex(logs.stdout ?? "", /resolved-ok/, "the name was resolved");
  t.regex(logs.stdout ?? "", /hello from the nested internet[\s\S]*fetched-ok/, "the file came through NAT");
  t.regex((await r("ps")).stdout ?? "", new RegExp((address ?? "none").replace(/\./g, "\\.")), "ps shows the address");
  const fromHost = await r("get-from-host");
  t.is(fromHost.code, 0, show(fromHost));
  t.is(fromHost.stdout, "hello-from-the-guest\n", "the published port answers on the host's loopback");
  const fromOutside = await r("get-from-outside");
  t.is(fromOutside.code, 0, show(fromOutside));
  t.is(fromOutside.stdout, "hello-from-the-guest\n", "and from outside, on the uplink's address");
  t.is((await r("rm")).code, 0, show(await r("rm")));
  const removed = await r("network-rm");
  t.is(removed.code, 0, show(removed));
  const links = JSON.parse((await r("links-after")).stdout ?? "[]") as { ifname: string }[];
  t.deepEqual(links.map((l) => l.ifname).filter((n) => /^vm(tap|br)-/.test(n)), [], "no TAP or bridge left");
  const ruleset = JSON.parse((await r("ruleset-after")).stdout ?? "{}") as { nftables?: { table?: { name: string } }[] };
  t.deepEqual((ruleset.nftables ?? []).flatMap((e) => (e.table ? [e.table.name] : [])).filter((n) => n === "vmctl"), [], "no nftables table of vmctl left");
  t.deepEqual((await r("vmms-after")).leftoverVmms, []);
  const peer = (await r("peer-log")).entries ?? [];
  t.log(`the internet saw: ${JSON.stringify(peer)}`);
  t.true(peer.some((e) => e.kind === "http" && e.url === "/hello.txt" && e.from === "198.51.100.1"), "the fetch reached the server from the host's uplink address (NAT)");
  t.true(peer.some((e) => e.kind === "dns" && e.qname === "files.test"), "the guest's query reached the resolver");
  done();
});

test.serial(`vmctl run --target microvm with a file that is no kernel fails clearly; no VMM, vmctld or QEMU left`, async (t) => {
  const deadline = budget(t, 60_000);
  const done = timed(t);
  const b = linux();
  const r = await b.result<CliResult>("cli-not-a-kernel", deadline);
  t.log(`exit ${r.code} in ${r.ms} ms: ${r.stderr.trim()}`);
  t.is(r.code, 125, r.stderr);
  t.regex(r.stderr, /kernel/i);
  noVmmLeft(t, r);
  const stopped = await b.result<DaemonResult>("daemon-stopped", deadline);
  t.true(stopped.daemonGone, `vmctld did not stop on SIGTERM:\n${stopped.logTail}`);
  t.log(`vmctld gone ${stopped.ms} ms after SIGTERM`);
  noVmmLeft(t, stopped);
  await noQemuLeft(t, b);
  done();
});
