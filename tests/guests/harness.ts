// Boots a test guest (tests/guests) in a fresh vmctl-vmm process through the gRPC API
// and collects what a test needs: final state, console output, metrics.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { requireVmmBinary, VmmProcess, type Drive, type Metrics, type VmState, type Vsock } from "@vmctl/vmm-client";

/** The ELF holding every test guest, built by tests/guests/build.sh (part of `npm run build`). */
export const GUEST_ELF = fileURLToPath(new URL("../../target/guests/vmctl-test-guest.elf", import.meta.url));
/** The same guest as a bzImage (boot protocol 2.12, 64-bit entry at +0x200; see ABI.md). */
export const GUEST_BZIMAGE = fileURLToPath(new URL("../../target/guests/vmctl-test-guest.bzImage", import.meta.url));
/** A file that is not a kernel, for bad-input tests. */
export const NOT_ELF = fileURLToPath(new URL("../../target/guests/not-elf.bin", import.meta.url));

export function requireGuestElf(): string {
  if (!existsSync(GUEST_ELF)) {
    throw new Error(`test guest not built: ${GUEST_ELF} is missing (run \`npm run build\`)`);
  }
  return GUEST_ELF;
}

export function requireGuestBzImage(): string {
  if (!existsSync(GUEST_BZIMAGE)) {
    throw new Error(`test guest not built: ${GUEST_BZIMAGE} is missing (run \`npm run build\`)`);
  }
  return GUEST_BZIMAGE;
}

export interface GuestRun {
  readonly test: string;
  /** The kernel to boot (default: the guest ELF, GUEST_ELF; GUEST_BZIMAGE for the bzImage). */
  readonly kernel?: string;
  readonly vcpus?: number;
  readonly memMib?: number;
  readonly drives?: readonly Drive[];
  /** A vsock device (PutVsock, after the drives). */
  readonly vsock?: Vsock;
  /** Runs once the VM has started, beside it (the host side of a device); awaited before the result is returned, its failure fails the run. */
  readonly whileRunning?: () => Promise<void>;
  /** Extra kernel command-line words, e.g. "vmctl.exit=7". */
  readonly args?: readonly string[];
  /** Fail if the VM has not exited after this long (default 20 s). */
  readonly timeoutMs?: number;
}

export interface GuestResult {
  readonly state: VmState;
  readonly console: string;
  readonly metrics: Metrics;
  /** `key=value` lines the guest printed. */
  readonly facts: ReadonlyMap<string, string>;
}

async function collect(source: AsyncIterable<Buffer>): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of source) chunks.push(chunk);
  return Buffer.concat(chunks).toString("utf8");
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export function parseFacts(console: string): Map<string, string> {
  const facts = new Map<string, string>();
  for (const line of console.split("\n")) {
    const match = /^([a-z0-9_.-]+)=(.*)$/.exec(line.trim());
    if (match) facts.set(match[1] as string, match[2] as string);
  }
  return facts;
}

/** Boots `run.test` in its own VMM, waits for the VM to exit, and tears the VMM down. */
export async function bootGuest(run: GuestRun): Promise<GuestResult> {
  const kernel = run.kernel ?? requireGuestElf();
  if (!existsSync(kernel)) throw new Error(`kernel not found: ${kernel} (run \`npm run build\`)`);
  const vmm = await VmmProcess.spawn({ binary: requireVmmBinary() });
  try {
    const { client } = vmm;
    await client.putMachineConfig({ vcpuCount: run.vcpus ?? 1, memSizeMib: run.memMib ?? 32 });
    await client.putBootSource({
      kernelImagePath: kernel,
      bootArgs: ["console=ttyS0", `vmctl.test=${run.test}`, ...(run.args ?? [])].join(" "),
    });
    for (const drive of run.drives ?? []) await client.putDrive(drive);
    if (run.vsock) await client.putVsock(run.vsock);
    const consoleOutput = collect(client.console({ replay: true }));
    const exited = client.waitExit();
    await client.start();
    const timeoutMs = run.timeoutMs ?? 20_000;
    const peer = run.whileRunning?.();
    // Kept from an unhandled rejection while the VM runs; awaited below.
    peer?.catch(() => undefined);
    const state = await withTimeout(exited, timeoutMs, `guest ${run.test}`).catch(async (err: unknown) => {
      throw new Error(`${(err as Error).message}; VMM log tail: ${vmm.stderr.slice(-2000)}`);
    });
    const console = await withTimeout(consoleOutput, 5000, `console of ${run.test}`);
    if (peer) await withTimeout(peer, 5000, `host side of ${run.test}`);
    const metrics = await client.getMetrics();
    return { state, console, metrics, facts: parseFacts(console) };
  } finally {
    await vmm.close();
  }
}
