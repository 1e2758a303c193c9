// Network namespaces for tests: named ones a test makes (`ip netns add`), commands and
// long-running processes inside them (`ip netns exec`), veth pairs between them. Nothing
// here touches the namespace the test runner itself is in: links are made from inside
// the namespaces they belong to. Needs root and iproute2; a missing `ip` fails loudly.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { promisify } from "node:util";

const run = promisify(execFile);
let counter = 0;

/**
 * A system tool by absolute path: under npx/npm, PATH starts with node_modules/.bin,
 * where `nft` is an unrelated npm CLI (@vercel/nft).
 */
export function systemTool(name: string, debianPackage: string): string {
  const found = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map((dir) => `${dir}/${name}`).find((path) => existsSync(path));
  if (found === undefined) throw new Error(`network tests need \`${name}\` (Debian package ${debianPackage}; scripts/setup installs it)`);
  return found;
}

const IP = systemTool("ip", "iproute2");

/** A named network namespace, deleted (with every process started in it) by `delete`. */
export class NetNamespace {
  readonly #children = new Set<ChildProcess>();

  private constructor(readonly name: string) {}

  /** A new namespace named after `label`, this process and a counter, loopback up. */
  static async create(label: string): Promise<NetNamespace> {
    const name = `vmctl-t-${label}-${process.pid}-${++counter}`.slice(0, 64);
    try {
      await run(IP, ["netns", "add", name]);
    } catch (err) {
      throw new Error(`cannot make network namespace ${name} (needs root and iproute2's \`ip\`): ${(err as Error).message}`, { cause: err });
    }
    const ns = new NetNamespace(name);
    await ns.ip("link", "set", "lo", "up");
    return ns;
  }

  /** Runs a command inside; rejects with its stderr when it fails. */
  async exec(file: string, args: readonly string[], options: { timeoutMs?: number } = {}): Promise<string> {
    try {
      const { stdout } = await run(IP, ["netns", "exec", this.name, file, ...args], { timeout: options.timeoutMs ?? 30_000, maxBuffer: 16 * 1024 * 1024 });
      return stdout;
    } catch (err) {
      const e = err as Error & { stderr?: string };
      throw new Error(`in ${this.name}: ${file} ${args.join(" ")}: ${e.stderr?.trim() || e.message}`, { cause: err });
    }
  }

  /** `ip ARGS` inside. */
  ip(...args: string[]): Promise<string> {
    return this.exec(IP, args);
  }

  /** `ip -j ARGS` inside, parsed. */
  async ipJson<T = unknown>(...args: string[]): Promise<T> {
    const out = await this.exec(IP, ["-j", ...args]);
    return JSON.parse(out.trim() === "" ? "[]" : out) as T;
  }

  /** `nft -j list ruleset` inside, parsed: the `nftables` items. */
  async nftRuleset(): Promise<Record<string, unknown>[]> {
    const out = await this.exec(systemTool("nft", "nftables"), ["-j", "list", "ruleset"]);
    return (JSON.parse(out) as { nftables: Record<string, unknown>[] }).nftables;
  }

  /** A long-running process inside, killed by `delete` if still running. */
  spawn(file: string, args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): ChildProcess {
    const child = spawn(IP, ["netns", "exec", this.name, file, ...args], { stdio: ["pipe", "pipe", "pipe"], ...options });
    this.#children.add(child);
    child.once("exit", () => this.#children.delete(child));
    return child;
  }

  /** Kills what was started inside and deletes the namespace (its links and rules go with it). */
  async delete(): Promise<void> {
    await Promise.all(
      [...this.#children].map(async (child) => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill("SIGKILL");
          await once(child, "exit");
        }
      }),
    );
    await run(IP, ["netns", "delete", this.name]).catch(() => undefined);
  }
}

/** A veth pair: `aName` in `a`, `bName` in `b`, both up; made from inside `a`. */
export async function vethPair(a: NetNamespace, aName: string, b: NetNamespace, bName: string, options: { bMac?: string } = {}): Promise<void> {
  await a.ip("link", "add", aName, "type", "veth", "peer", "name", bName, "netns", b.name);
  if (options.bMac !== undefined) await b.ip("link", "set", bName, "address", options.bMac);
  await a.ip("link", "set", aName, "up");
  await b.ip("link", "set", bName, "up");
}

/** Waits until `child` prints `line` on stdout (a server's "ready"); rejects if it exits first. */
export async function waitForLine(child: ChildProcess, line: string, timeoutMs = 10_000): Promise<void> {
  let seen = "";
  let errors = "";
  child.stderr?.on("data", (d: Buffer) => (errors += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "${line}" within ${timeoutMs} ms; stderr: ${errors}`)), timeoutMs);
    child.stdout?.on("data", (d: Buffer) => {
      seen += d.toString();
      if (seen.split("\n").includes(line)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`exited (${code}) before "${line}"; stderr: ${errors}`));
    });
  });
}
