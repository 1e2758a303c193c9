// Test fixtures for the microvm target: a TargetContext over a temp serviceDir and a
// memory ledger, the real vmctl-vmm and test guest, and a scratch area whose cleanup
// kills every VMM it started (found by the scratch dir in their command line).
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { OwnedResource } from "@vmctl/core/contract";
import { requireVmmBinary } from "@vmctl/vmm-client";
import { initMicrovm, kvmUnusable } from "../index.js";
import type { MicrovmFactory } from "../factory.js";
import { MemoryLogger, testTargetContext, type TestTargetContext } from "@vmctl/plugin-conformance";

/** The ELF holding every test guest (tests/guests/build.sh). */
export const GUEST_ELF = fileURLToPath(new URL("../../../../target/guests/vmctl-test-guest.elf", import.meta.url));

// One context, in-memory ledger and logger for every plugin's tests: the conformance kit's.
export { MemoryLogger };
export type TestContext = TestTargetContext;

/** A context for one service whose serviceDir lives under `parent`. */
export function testContext(parent: string, serviceId: string, resources: readonly OwnedResource[] = []): TestContext {
  return testTargetContext(parent, serviceId, { owner: "microvm-tests", resources });
}

/** The test guest ELF, or a thrown reason: these tests boot real guests, never skip. */
export function requireGuest(): string {
  if (!existsSync(GUEST_ELF)) throw new Error(`test guest not built: ${GUEST_ELF} is missing (run bash tests/guests/build.sh)`);
  return GUEST_ELF;
}

/** Everything a VM test needs, or a thrown reason. */
export function requireVmHost(): { binary: string; guest: string } {
  const binary = requireVmmBinary();
  const why = kvmUnusable();
  if (why) throw new Error(`the microvm tests need KVM: ${why}`);
  return { binary, guest: requireGuest() };
}

/** A scratch area for one test file: the target's state dir and service dirs. */
export interface Scratch {
  readonly dir: string;
  readonly stateDir: string;
  readonly guest: string;
  readonly log: MemoryLogger;
  factory(): MicrovmFactory;
  /** A spec for the test guest running `test`, with extra command-line words. */
  guestSpec(test: string, ...words: string[]): { kernel: string; bootArgs: string; memoryMib: number };
  /** Kills every VMM left under the scratch dir and removes it. */
  cleanup(): Promise<void>;
}

export function scratch(prefix = "vmctl-mvm-"): Scratch {
  const { binary, guest } = requireVmHost();
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const stateDir = join(dir, "state");
  const log = new MemoryLogger();
  const factories: MicrovmFactory[] = [];
  // Even when a test times out and its worker is torn down: no VMM, no temp dir survives.
  process.once("exit", () => {
    killVmmsUnder(dir);
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    dir,
    stateDir,
    guest,
    log,
    factory() {
      const factory = initMicrovm({ stateDir, options: { vmm: binary }, log });
      if (!factory) throw new Error(`microvm target did not initialise: ${JSON.stringify(log.lines.at(-1))}`);
      factories.push(factory);
      return factory;
    },
    guestSpec(test, ...words) {
      return { kernel: guest, bootArgs: ["console=ttyS0", `vmctl.test=${test}`, ...words].join(" "), memoryMib: 16 };
    },
    async cleanup() {
      await Promise.all(factories.map((f) => f.close()));
      killVmmsUnder(dir);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Live vmctl-vmm processes whose API socket path starts with `prefix`: pid → socket. */
export function vmmsUnder(prefix: string): Map<number, string> {
  const found = new Map<number, string>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      if (/^[ZX]/.test(stat.slice(stat.lastIndexOf(")") + 2))) continue;
      const argv = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      const i = argv.indexOf("--api-sock");
      const socket = i >= 0 ? argv[i + 1] : undefined;
      if (socket?.startsWith(prefix)) found.set(Number(entry), socket);
    } catch {
      // exited meanwhile
    }
  }
  return found;
}

export function killVmmsUnder(prefix: string): void {
  for (const pid of vmmsUnder(prefix).keys()) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone
    }
  }
}

/** Unix sockets left anywhere under `dir`. */
export function socketsUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    let entries: string[];
    try {
      entries = readdirSync(d);
    } catch {
      return;
    }
    for (const name of entries) {
      const p = join(d, name);
      try {
        const st = statSync(p);
        if (st.isDirectory()) walk(p);
        else if (st.isSocket()) out.push(p);
      } catch {
        // gone
      }
    }
  };
  walk(dir);
  return out;
}
