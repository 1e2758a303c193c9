// vmctl network create|ls|inspect|rm: named networks (a bridge, a subnet, NAT each), and
// the flags `run` shares for a service's network (--network, -p, --network-policy).
import type { Command } from "commander";
import type { EgressPolicy, NetworkRecord, PublishedPort } from "@vmctl/client";
import { formatPolicy, parsePolicy, parsePublish, VmctlError } from "@vmctl/core/contract";
import { eachRef, withClient } from "../connection/with-client.js";
import { CliError } from "../errors.js";
import { age } from "../output/format.js";
import { formatTable } from "../output/table.js";
import { collect } from "./parse.js";

/** A flag's value checked by the engine's own rules, refused as a usage error naming the flag. */
function asUsage<T>(flag: string, text: string, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (err instanceof VmctlError) throw new CliError(`${flag} ${JSON.stringify(text)}: ${err.message}`, 2);
    throw err;
  }
}

/** `-p [HOST_ADDRESS:]HOST_PORT:GUEST_PORT[/tcp|/udp]`, each. */
export function publishFlags(items: readonly string[]): PublishedPort[] {
  return items.map((text, i) => asUsage("-p", text, () => parsePublish(text, `ports[${i}]`)));
}

/** `--network-policy allow-all|deny-all|allow:CIDR[,CIDR...]`. */
export function policyFlag(text: string | undefined): EgressPolicy | undefined {
  return text === undefined ? undefined : asUsage("--network-policy", text, () => parsePolicy(text));
}

/** A service's ports as `docker ps` shows them: "0.0.0.0:8080->80/tcp". */
export function portsText(ports: readonly PublishedPort[]): string {
  return ports.map((p) => `${p.hostAddress ?? "0.0.0.0"}:${p.hostPort}->${p.guestPort}/${p.protocol}`).join(", ");
}

/** What `network inspect` and `network ls --json` print of a network. */
export function networkJson(network: NetworkRecord): unknown {
  return {
    ...JSON.parse(JSON.stringify(network)),
    // An empty list would read as an oversight: say why guests get no resolver.
    ...(network.dns.length === 0 ? { dnsNote: "no resolvers: the host has none but loopback ones; give --dns at create" } : {}),
  };
}

export function networksTable(networks: readonly NetworkRecord[], now = Date.now()): string {
  const rows = networks.map((n) => [n.name, n.subnet, n.gateway, n.bridge, formatPolicy(n.policy), String(n.services.length), age(n.createdAt, now)]);
  return formatTable(["NAME", "SUBNET", "GATEWAY", "BRIDGE", "POLICY", "SERVICES", "AGE"], rows);
}

interface CreateOptions {
  subnet?: string;
  dns: string[];
  networkPolicy?: string;
}

export function registerNetwork(program: Command): void {
  const network = program.command("network").description("manage networks (create, ls, inspect, rm)");
  network
    .command("create")
    .description("create a network: a bridge with its subnet, NAT to the host's uplink")
    .argument("<name>", "the network's name ([a-z0-9][a-z0-9_.-]*)")
    .option("--subnet <cidr>", "its IPv4 subnet, /16 to /29 (default: the next free one of vmctld's pool)")
    .option("--dns <ip>", "a resolver for its guests (repeatable; default: the host's non-loopback ones)", collect, [])
    .option("--network-policy <policy>", "egress of its services that set none: allow-all (default), deny-all or allow:CIDR[,CIDR...]")
    .action(async (name: string, options: CreateOptions, command: Command) => {
      const policy = policyFlag(options.networkPolicy);
      const created = await withClient(command, (client) =>
        client.createNetwork({
          name,
          ...(options.subnet === undefined ? {} : { subnet: options.subnet }),
          dns: options.dns,
          ...(policy === undefined ? {} : { policy }),
        }),
      );
      process.stdout.write(`${created.name}\n`);
    });
  network
    .command("ls")
    .description("list networks")
    .option("--json", "print the networks as JSON")
    .option("-q, --quiet", "only names")
    .action(async (options: { json?: boolean; quiet?: boolean }, command: Command) => {
      const networks = await withClient(command, (client) => client.listNetworks());
      if (options.json) process.stdout.write(`${JSON.stringify(networks.map(networkJson), null, 2)}\n`);
      else if (options.quiet) process.stdout.write(networks.map((n) => `${n.name}\n`).join(""));
      else process.stdout.write(`${networksTable(networks)}\n`);
    });
  network
    .command("inspect")
    .description("print networks as a JSON array")
    .argument("<name...>", "network names")
    .action(async (names: string[], _options: unknown, command: Command) => {
      const found: NetworkRecord[] = [];
      try {
        await withClient(command, (client) => eachRef(names, async (name) => void found.push(await client.getNetwork(name))));
      } finally {
        process.stdout.write(`${JSON.stringify(found.map(networkJson), null, 2)}\n`);
      }
    });
  network
    .command("rm")
    .description("remove networks no service is on")
    .argument("<name...>", "network names")
    .action(async (names: string[], _options: unknown, command: Command) => {
      await withClient(command, (client) =>
        eachRef(names, async (name) => {
          await client.deleteNetwork(name);
          process.stdout.write(`${name}\n`);
        }),
      );
    });
}
