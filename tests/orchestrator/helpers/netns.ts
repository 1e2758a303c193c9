// A network namespace per test, so that nothing a test's vmctld makes (bridges, TAPs,
// nftables rules) ever touches the host's own: `ip netns add` with loopback up and a veth
// uplink (192.0.2.2/24, default route via 192.0.2.1 — TEST-NET-1, the host's "own"
// subnet as seen inside), vmctld run in it with `ip netns exec` (it execs: the child's pid
// is vmctld's, so kill -9 hits vmctld), and readers of what is in it (`ip -j`, `nft -j`).
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The "nettap" target: claims network and makes each service's TAP, as a microVM target does. */
export const NETTAP_FIXTURE = fileURLToPath(new URL("../fixtures/vmctl-plugin-nettap", import.meta.url));

/**
 * nftables' own `nft`: under npm, PATH starts with node_modules/.bin, where @vercel/nft
 * (a bundler's dependency) installs a command of the same name.
 */
export function nftPath(): string {
  for (const dir of (process.env.PATH ?? "").split(":")) {
    if (dir === "" || dir.includes("node_modules")) continue;
    if (existsSync(join(dir, "nft"))) return join(dir, "nft");
  }
  for (const path of ["/usr/sbin/nft", "/sbin/nft"]) if (existsSync(path)) return path;
  throw new Error("nft (nftables) is not installed: apt-get install nftables");
}

/** `ip` by its path: a child may run with a PATH that holds nothing (the adversarial suite's vmctld). */
function ipBinary(): string {
  for (const path of ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]) if (existsSync(path)) return path;
  throw new Error("ip (iproute2) is not installed: apt-get install iproute2");
}

/** The uplink's subnet inside every test namespace: a network there must not overlap it. */
export const UPLINK_SUBNET = "192.0.2.0/24";

function run(args: readonly string[], what: string): string {
  const r = spawnSync(args[0] as string, args.slice(1), { encoding: "utf8" });
  if (r.error !== undefined) throw new Error(`${what}: ${args[0]} could not run (${r.error.message}); iproute2 and nftables must be installed`);
  if (r.status !== 0) throw new Error(`${what}: ${args.join(" ")} exited ${r.status}: ${r.stderr.trim()}`);
  return r.stdout;
}

export interface LinkInfo {
  readonly ifname: string;
  readonly master?: string;
  readonly operstate?: string;
  readonly flags?: readonly string[];
  readonly linkinfo?: { readonly info_kind?: string };
}

export class TestNetns {
  private constructor(readonly name: string) {}

  /** A fresh namespace; throws (never skips) when it cannot be made (root, iproute2 needed). */
  static create(prefix = "vmctl-c"): TestNetns {
    const name = `${prefix}-${randomBytes(4).toString("hex")}`;
    run(["ip", "netns", "add", name], "making a test network namespace");
    const ns = new TestNetns(name);
    try {
      ns.ip(["link", "set", "lo", "up"]);
      // A veth pair (no dummy driver on every kernel): uplink0 is the "host's" interface, its peer idles.
      ns.ip(["link", "add", "uplink0", "type", "veth", "peer", "name", "uplink0p"]);
      ns.ip(["link", "set", "uplink0p", "up"]);
      ns.ip(["addr", "add", "192.0.2.2/24", "dev", "uplink0"]);
      ns.ip(["link", "set", "uplink0", "up"]);
      ns.ip(["route", "add", "default", "via", "192.0.2.1"]);
    } catch (err) {
      ns.remove();
      throw err;
    }
    return ns;
  }

  /** The command line that runs `argv` in this namespace. */
  wrap(argv: readonly string[]): string[] {
    return [ipBinary(), "netns", "exec", this.name, ...argv];
  }

  ip(args: readonly string[]): string {
    return run(["ip", "-n", this.name, ...args], `ip in ${this.name}`);
  }

  links(): LinkInfo[] {
    return JSON.parse(this.ip(["-j", "-d", "link", "show"]) || "[]") as LinkInfo[];
  }

  /** The namespace's whole nftables ruleset as `nft -j` gives it. */
  ruleset(): { nftables: Record<string, unknown>[] } {
    return JSON.parse(run(this.wrap([nftPath(), "-j", "list", "ruleset"]), `nft in ${this.name}`)) as { nftables: Record<string, unknown>[] };
  }

  /** The ruleset as text (`nft list ruleset`), for matching addresses and ports. */
  rulesetText(): string {
    return run(this.wrap([nftPath(), "list", "ruleset"]), `nft in ${this.name}`);
  }

  /** Kills whatever still runs in it, then deletes it. */
  remove(): void {
    const pids = spawnSync("ip", ["netns", "pids", this.name], { encoding: "utf8" }).stdout.split("\n").filter(Boolean);
    for (const pid of pids) {
      try {
        process.kill(Number(pid), "SIGKILL");
      } catch {
        // gone
      }
    }
    spawnSync("ip", ["netns", "del", this.name], { stdio: "ignore" });
  }
}
