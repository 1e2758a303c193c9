// Where the guest agent is: its static binary (`vmctl-agent`) and the initramfs that holds
// it as /init (`vmctl-agent.initramfs`, made by scripts/build). Found like the VMM
// (@vmctl/vmm-client's binary.ts): an environment variable, else this checkout's newest
// build, else beside the `vmctl-vmm` that would be run.
import { accessSync, constants, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { VmctlError } from "@vmctl/core/contract";
import { findVmmBinary } from "@vmctl/vmm-client";

export const AGENT_BINARY = "vmctl-agent";
export const AGENT_INITRAMFS = "vmctl-agent.initramfs";

/** How the checkout builds each (what a missing file's error tells the user to run). */
const BUILD_HINTS: Readonly<Record<string, string>> = {
  [AGENT_BINARY]:
    "run `npm run build`, or for the agent alone: RUSTFLAGS=\"-C target-feature=+crt-static\" cargo build --release --locked -p vmctl-guest-agent --target x86_64-unknown-linux-gnu",
  [AGENT_INITRAMFS]: "run `npm run build`: scripts/build writes it after building the agent",
};

/**
 * The checkout's build directories, static build first: scripts/build links the agent
 * statically for x86_64-unknown-linux-gnu and writes the initramfs there; a plain
 * `cargo build --release` puts a dynamic agent (fine on the host, not as a guest's init)
 * in target/release. src/agent-files.ts and dist/index.js both sit three levels below the
 * repository root.
 */
const CHECKOUT_DIRS = ["../../../target/x86_64-unknown-linux-gnu/release/", "../../../target/release/"];

function isFile(path: string, executable: boolean): boolean {
  try {
    if (executable) accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function newest(paths: string[]): string | undefined {
  return paths.sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
}

/** This checkout's builds of `name` (absolute paths; they may not exist). */
export function checkoutAgentBuilds(name: string = AGENT_BINARY): string[] {
  return CHECKOUT_DIRS.map((dir) => fileURLToPath(new URL(dir + name, import.meta.url)));
}

function find(name: string, override: string | undefined, executable: boolean, env: NodeJS.ProcessEnv): string | undefined {
  if (override) return isFile(override, executable) ? override : undefined;
  const built = newest(checkoutAgentBuilds(name).filter((path) => isFile(path, executable)));
  if (built) return built;
  const vmm = findVmmBinary(env);
  const beside = vmm ? join(dirname(vmm), name) : undefined;
  return beside && isFile(beside, executable) ? beside : undefined;
}

function required(found: string | undefined, what: string, variable: string, env: NodeJS.ProcessEnv): string {
  if (found) return found;
  const where = env[variable] ? `${variable}=${env[variable]} is not a usable file` : "not built, and not beside vmctl-vmm";
  throw new VmctlError("NOT_FOUND", `${what}: ${where} (${BUILD_HINTS[what]})`);
}

/** `$VMCTL_AGENT_BIN`, else the checkout's newest `vmctl-agent`, else the one beside `vmctl-vmm`. */
export function findAgentBinary(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return find(AGENT_BINARY, env.VMCTL_AGENT_BIN, true, env);
}

/** {@link findAgentBinary}, failing with NOT_FOUND and how to build it. */
export function requireAgentBinary(env: NodeJS.ProcessEnv = process.env): string {
  return required(findAgentBinary(env), AGENT_BINARY, "VMCTL_AGENT_BIN", env);
}

/** `$VMCTL_AGENT_INITRAMFS`, else the checkout's `vmctl-agent.initramfs`, else the one beside `vmctl-vmm`. */
export function findAgentInitramfs(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return find(AGENT_INITRAMFS, env.VMCTL_AGENT_INITRAMFS, false, env);
}

/** {@link findAgentInitramfs}, failing with NOT_FOUND and how to build it. */
export function requireAgentInitramfs(env: NodeJS.ProcessEnv = process.env): string {
  return required(findAgentInitramfs(env), AGENT_INITRAMFS, "VMCTL_AGENT_INITRAMFS", env);
}
