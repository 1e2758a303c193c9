// vmctl kernel build|ls: the guest kernel the microvm target boots when a spec names
// none. Host-local, like doctor: no daemon. The cache's layout is read only through
// vmctl-plugin-microvm/kernel-cache, the same module the target uses.
import { basename, dirname } from "node:path";
import type { Command } from "commander";
import { findKernel, kernelCacheDir, listKernels, type CachedKernel, type KernelCacheListing } from "vmctl-plugin-microvm/kernel-cache";
import { CliError, cliError } from "../errors.js";
import { kernelBuildScriptPath } from "../kernel-script.js";
import { formatTable } from "../output/table.js";

/** The environment images/kernel/build runs in: the cache made absolute, so script and CLI mean one directory. */
function buildEnv(cache: string): NodeJS.ProcessEnv {
  return { ...process.env, VMCTL_KERNEL_CACHE: cache };
}

/** The listing, with library errors (unreadable cache, broken `default`) as one CLI line. */
function listing(cache: string): KernelCacheListing {
  try {
    return listKernels(cache);
  } catch (err) {
    throw cliError(err);
  }
}

const mib = (bytes: number): string => `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
/** "2026-12-06 06:30 UTC": minutes are enough to tell builds apart. */
const when = (iso: string): string => `${iso.slice(0, 16).replace("T", " ")} UTC`;

/** Loaded on demand: it brings child_process, which no other verb needs at start (README.md, "Start-up time"). */
const kernelBuild = (): Promise<typeof import("../kernel-build.js")> => import("../kernel-build.js");

async function build(options: { json?: boolean }): Promise<void> {
  const { requireKernelBuildScript, runKernelBuild } = await kernelBuild();
  const script = requireKernelBuildScript();
  const cache = kernelCacheDir();
  const printed = await runKernelBuild(script, buildEnv(cache));
  // The script's contract: the last line is <cache>/<key>/vmlinux. Checked, so what we
  // print is what the microvm target will find.
  let kernel: CachedKernel | undefined;
  try {
    kernel = findKernel(basename(dirname(printed)), cache);
  } catch (err) {
    throw cliError(err);
  }
  if (kernel === undefined || kernel.vmlinux !== printed) {
    throw new CliError(`${script} printed ${JSON.stringify(printed)}, which is not a kernel in ${cache}`);
  }
  process.stdout.write(options.json ? `${JSON.stringify({ cache, ...kernel }, null, 2)}\n` : `${kernel.vmlinux}\n`);
}

/** A kernel of the listing, and whether it is the one this checkout would build (null: cannot tell). */
type ListedKernel = CachedKernel & { readonly current: boolean | null };

async function ls(options: { json?: boolean }): Promise<void> {
  const { currentKernelKey, requireKernelBuildScript } = await kernelBuild();
  const cache = kernelCacheDir();
  const found = listing(cache);
  // Which kernel this checkout builds: only known with the checkout's script and the
  // source package; without them the listing still stands, with the reason given.
  let currentKey: string | null = null;
  let currentKeyError: string | null = null;
  try {
    currentKey = await currentKernelKey(requireKernelBuildScript(), buildEnv(cache));
  } catch (err) {
    if (!(err instanceof CliError)) throw err;
    currentKeyError = err.message;
  }
  const kernels: ListedKernel[] = found.kernels.map((k) => ({ ...k, current: currentKey === null ? null : k.key === currentKey }));
  if (options.json) {
    const report = { ...found, kernels, currentKey, currentKeyError };
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return;
  }
  for (const entry of found.ignored) process.stderr.write(`vmctl: note: ${found.dir}/${entry.name} is not a kernel: ${entry.reason}\n`);
  if (currentKeyError !== null) process.stderr.write(`vmctl: note: cannot tell which kernel this checkout builds: ${currentKeyError}\n`);
  if (kernels.length === 0) {
    process.stdout.write(`no guest kernels in ${found.dir}: build one with \`vmctl kernel build\` (about 10 minutes on 2 cores)\n`);
    return;
  }
  const rows = kernels.map((k) => [
    k.isDefault ? "*" : "",
    k.key,
    k.release ?? "?",
    mib(k.sizeBytes),
    when(k.builtAt),
    k.current === null ? "?" : k.current ? "yes" : "no",
  ]);
  process.stdout.write(`${formatTable(["DEFAULT", "KEY", "RELEASE", "SIZE", "BUILT", "CURRENT"], rows)}\n`);
}

export function registerKernel(program: Command): void {
  const kernel = program
    .command("kernel")
    .description("the guest kernel microVMs boot when a spec names none (cache: $VMCTL_KERNEL_CACHE or /var/cache/vmctl/kernel)");
  kernel
    .command("build")
    .description(`build the guest kernel with ${kernelBuildScriptPath()} (nothing to do when cached); prints its vmlinux path`)
    .option("--json", "print the kernel as JSON")
    .action(build);
  kernel
    .command("ls")
    .description("list built kernels: * the default, CURRENT whether this checkout's config builds it")
    .option("--json", "print the cache as JSON")
    .action(ls);
}
