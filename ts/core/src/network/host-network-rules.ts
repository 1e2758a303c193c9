// The nftables rules of our networks and services, as libnftables JSON commands. Pure:
// it builds documents and reads listings; host-network.ts runs them.
//
// Layout. Two tables of ours, nothing else touched: `inet vmctl` (NAT, published ports,
// egress and what guests reach on the host) and `bridge vmctl` (each guest port held to
// its MAC and address, so the address the other rules key on is the guest's own).
// Base chains hold fixed rules only and dispatch through verdict maps; everything per
// network or per service lives in chains of its own, found from those maps by name:
//   net-<bridge>-nat      masquerade of the subnet to anything but its bridge (so no uplink
//                         name is needed), and hairpin masquerade of published ports
//   net-<bridge>-input    what guests reach on the host: ping and DNS on the gateway
//   svc-<id>-dnat         the service's published ports (prerouting: from outside;
//                         output: from the host itself, 127.0.0.1 included)
//   svc-<id>-egress       the service's policy (allow-all, deny-all, allow CIDRs)
//   svc-<id>-guard        (bridge table) its port's MAC and IPv4/ARP source address
// Replacing one service's rules is one transaction: flush its chains, refill them, swap
// its map elements. Other services' rules are not touched.
//
// Decisions, enforced on the host whatever the guest does:
// - replies (ct established/related) always pass, so published ports answer under deny-all;
// - 169.254.169.254 (cloud metadata) is refused to every guest, before any policy;
// - guests reach nothing on the host itself but ICMP echo to their gateway and DNS (udp
//   and tcp 53) on it when the network's resolvers include the gateway; DNS to other
//   resolvers is egress like any other (allowed by allow-all, or an allow-CIDR naming it);
// - one network's guests reach another network's only through a published port;
// - a guest address with no service rules is dropped (fail closed);
// - IPv6 from guests is not forwarded (the networks are IPv4 only).
import type { EgressPolicy, NetworkDefinition, ServiceRules } from "./types.js";
import { parseCidr } from "./ipv4.js";

export const TABLE = "vmctl";

/** A libnftables JSON value: what the schema allows, never `any`. */
export type NftJson = string | number | boolean | null | readonly NftJson[] | { readonly [key: string]: NftJson };
export type NftCommand = { readonly [verb: string]: NftJson };

type Family = "inet" | "bridge";

// Names of the sets and maps (inet table unless said).
const BRIDGES = "bridges"; // ifname: our bridges
const BRIDGE_SELF = "bridge_self"; // ifname . ifname: (bridge, bridge), traffic within one network
const NET_NAT = "net_nat"; // subnet : jump net-<bridge>-nat
const NET_INPUT = "net_input"; // ifname : jump net-<bridge>-input
const SVC_EGRESS = "svc_egress"; // guest address : jump svc-<id>-egress
const PORTS = "ports"; // l4proto . port : jump svc-<id>-dnat (every host address)
const PORTS_ADDR = "ports_addr"; // address . l4proto . port : jump svc-<id>-dnat (one host address)
const GUARDS = "guards"; // (bridge table) ifname : jump svc-<id>-guard

const METADATA_ADDRESS = "169.254.169.254";

// --- expressions -------------------------------------------------------------------------

const meta = (key: string): NftJson => ({ meta: { key } });
const payload = (protocol: string, field: string): NftJson => ({ payload: { protocol, field } });
const ct = (key: string): NftJson => ({ ct: { key } });
const match = (left: NftJson, right: NftJson, op = "=="): NftJson => ({ match: { op, left, right } });
const jump = (target: string): NftJson => ({ jump: { target } });
const ACCEPT: NftJson = { accept: null };
const DROP: NftJson = { drop: null };
const RETURN: NftJson = { return: null };
const MASQUERADE: NftJson = { masquerade: null };
const FIB_LOCAL = match({ fib: { result: "type", flags: ["daddr"] } }, "local");
const ESTABLISHED = match(ct("state"), ["established", "related"], "in");
const CT_DNAT = match(ct("status"), "dnat", "in");

function prefix(cidr: string): NftJson {
  const { base, prefix: len } = parseCidr(cidr, "cidr");
  const addr = [24, 16, 8, 0].map((s) => Math.floor(base / 2 ** s) % 256).join(".");
  return len === 32 ? addr : { prefix: { addr, len } };
}

// --- commands ----------------------------------------------------------------------------

const tableRef = (family: Family) => ({ family, name: TABLE });
const chainRef = (family: Family, name: string) => ({ family, table: TABLE, name });

function addChain(family: Family, name: string, base?: { type: string; hook: string; prio: number }): NftCommand {
  return { add: { chain: { ...chainRef(family, name), ...(base ? { ...base, policy: "accept" } : {}) } } };
}
const flushChain = (family: Family, name: string): NftCommand => ({ flush: { chain: chainRef(family, name) } });
const deleteChain = (family: Family, name: string): NftCommand => ({ delete: { chain: chainRef(family, name) } });
const rule = (family: Family, chain: string, expr: readonly NftJson[]): NftCommand => ({
  add: { rule: { family, table: TABLE, chain, expr } },
});

function set(family: Family, name: string, type: NftJson, map?: string, flags?: string[]): NftCommand {
  return {
    add: {
      [map === undefined ? "set" : "map"]: {
        family,
        table: TABLE,
        name,
        type,
        ...(map === undefined ? {} : { map }),
        ...(flags === undefined ? {} : { flags }),
      },
    },
  };
}

function element(verb: "add" | "delete", family: Family, name: string, elem: readonly NftJson[]): NftCommand {
  return { [verb]: { element: { family, table: TABLE, name, elem } } };
}

/**
 * A chain filled from scratch: made when absent, else emptied; then its rules added. Only
 * a missing chain is "added": re-adding an existing one costs a kernel round of its own.
 */
function fill(family: Family, name: string, rules: readonly (readonly NftJson[])[], state: RuleState, base?: { type: string; hook: string; prio: number }): NftCommand[] {
  const exists = state.chains[family].has(name);
  return [exists ? flushChain(family, name) : addChain(family, name, base), ...rules.map((r) => rule(family, name, r))];
}

// --- names -------------------------------------------------------------------------------

export const netChain = (bridge: string, what: "nat" | "input") => `net-${bridge}-${what}`;
export const svcChain = (serviceId: string, what: "dnat" | "egress" | "guard") => `svc-${serviceId}-${what}`;
const SVC_CHAIN = /^svc-(.+)-(dnat|egress|guard)$/;
const NET_CHAIN = /^net-(.+)-(nat|input)$/;

// --- the fixed part ----------------------------------------------------------------------

/** The tables, sets, maps and base chains; base chains refilled (they hold fixed rules only). */
export function skeleton(state: RuleState): NftCommand[] {
  const nat = (hook: string, prio: number) => ({ type: "nat", hook, prio });
  const filter = (hook: string, prio: number) => ({ type: "filter", hook, prio });
  const publish = [
    [FIB_LOCAL, { vmap: { key: { concat: [payload("ip", "daddr"), meta("l4proto"), payload("th", "dport")] }, data: `@${PORTS_ADDR}` } }],
    [FIB_LOCAL, { vmap: { key: { concat: [meta("l4proto"), payload("th", "dport")] }, data: `@${PORTS}` } }],
  ];
  const base = (name: string, spec: { type: string; hook: string; prio: number }, rules: NftJson[][]) => fill("inet", name, rules, state, spec);
  const inBridges = match(meta("iifname"), `@${BRIDGES}`);
  const outBridges = match(meta("oifname"), `@${BRIDGES}`);
  return [
    { add: { table: tableRef("inet") } },
    set("inet", BRIDGES, "ifname"),
    set("inet", BRIDGE_SELF, ["ifname", "ifname"]),
    set("inet", NET_NAT, "ipv4_addr", "verdict", ["interval"]),
    set("inet", NET_INPUT, "ifname", "verdict"),
    set("inet", SVC_EGRESS, "ipv4_addr", "verdict"),
    set("inet", PORTS, ["inet_proto", "inet_service"], "verdict"),
    set("inet", PORTS_ADDR, ["ipv4_addr", "inet_proto", "inet_service"], "verdict"),
    // Regular chains the base chains jump to, refilled like them.
    ...fill("inet", "guest-cross", [[CT_DNAT, RETURN], [DROP]], state),
    ...fill("inet", "guest-egress", [
      [match({ concat: [meta("iifname"), meta("oifname")] }, `@${BRIDGE_SELF}`), ACCEPT],
      [match(payload("ip", "daddr"), METADATA_ADDRESS), DROP],
      [match(meta("nfproto"), "ipv6"), DROP],
      [outBridges, jump("guest-cross")],
      [{ vmap: { key: payload("ip", "saddr"), data: `@${SVC_EGRESS}` } }],
      [DROP],
    ], state),
    ...fill("inet", "guest-input", [
      [ESTABLISHED, ACCEPT],
      [{ vmap: { key: meta("iifname"), data: `@${NET_INPUT}` } }],
      [DROP],
    ], state),
    ...base("prerouting", nat("prerouting", -100), publish),
    ...base("output", nat("output", -100), publish),
    ...base("postrouting", nat("postrouting", 100), [
      // The host's own 127.0.0.1 to a published port: the guest must answer the gateway.
      [outBridges, match(payload("ip", "saddr"), { prefix: { addr: "127.0.0.0", len: 8 } }), MASQUERADE],
      [{ vmap: { key: payload("ip", "saddr"), data: `@${NET_NAT}` } }],
    ]),
    ...base("forward", filter("forward", 0), [
      [ESTABLISHED, ACCEPT],
      [inBridges, jump("guest-egress")],
      [outBridges, CT_DNAT, ACCEPT],
      [outBridges, DROP],
    ]),
    ...base("input", filter("input", 0), [[inBridges, jump("guest-input")]]),
    { add: { table: tableRef("bridge") } },
    set("bridge", GUARDS, "ifname", "verdict"),
    ...fill("bridge", "prerouting", [[{ vmap: { key: meta("iifname"), data: `@${GUARDS}` } }]], state, { type: "filter", hook: "prerouting", prio: -200 }),
  ];
}

// --- what exists -------------------------------------------------------------------------

/** A verdict-map element of ours: its key as nft lists it, and the chain it jumps to. */
export interface MapEntry {
  readonly key: NftJson;
  readonly target: string;
}

/** Our tables as listed: chains by family, verdict maps' entries, sets' elements. */
export interface RuleState {
  readonly chains: { readonly inet: ReadonlySet<string>; readonly bridge: ReadonlySet<string> };
  readonly maps: ReadonlyMap<string, readonly MapEntry[]>;
  readonly sets: ReadonlyMap<string, readonly NftJson[]>;
  /** Each chain's definition and rules as listed (handles left out), by "family chain". */
  readonly listed: ReadonlyMap<string, string>;
}

export const EMPTY_STATE: RuleState = { chains: { inet: new Set(), bridge: new Set() }, maps: new Map(), sets: new Map(), listed: new Map() };

/** A RuleState to fill with readListing. */
export function emptyState(): { chains: Record<Family, Set<string>>; maps: Map<string, MapEntry[]>; sets: Map<string, NftJson[]>; listed: Map<string, string> } {
  return { chains: { inet: new Set(), bridge: new Set() }, maps: new Map(), sets: new Map(), listed: new Map() };
}

/** The chains skeleton() fills: a network's set-up rewrites them only when they are not as last written. */
const FIXED_CHAINS = [
  "inet guest-cross",
  "inet guest-egress",
  "inet guest-input",
  "inet prerouting",
  "inet output",
  "inet postrouting",
  "inet forward",
  "inet input",
  "bridge prerouting",
];

/** The fixed chains as listed, definitions and rules: equal to a reading taken after skeleton() ran, they are intact. */
export function skeletonSignature(state: RuleState): string {
  return JSON.stringify(FIXED_CHAINS.map((c) => state.listed.get(c) ?? null));
}

/** The listing command for our two tables. */
export function listCommands(family: Family): NftCommand[] {
  return [{ list: { table: tableRef(family) } }];
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Reads `nft -j list table` output (of either table) into `into`. */
export function readListing(output: string, into: ReturnType<typeof emptyState>): void {
  if (output.trim() === "") return;
  const doc: unknown = JSON.parse(output);
  const items = isRecord(doc) && Array.isArray(doc.nftables) ? (doc.nftables as unknown[]) : [];
  for (const item of items) {
    if (!isRecord(item)) continue;
    const chain = item.chain;
    if (isRecord(chain) && chain.table === TABLE && (chain.family === "inet" || chain.family === "bridge") && typeof chain.name === "string") {
      into.chains[chain.family].add(chain.name);
      const { handle: _handle, ...definition } = chain;
      const key = `${chain.family} ${chain.name}`;
      into.listed.set(key, `${JSON.stringify(definition)}${into.listed.get(key) ?? ""}`);
    }
    const r = item.rule;
    if (isRecord(r) && r.table === TABLE && typeof r.chain === "string") {
      // Rules follow their chain in a listing: appended to its entry, in order.
      const key = `${String(r.family)} ${r.chain}`;
      into.listed.set(key, `${into.listed.get(key) ?? ""}\n${JSON.stringify(r.expr)}`);
    }
    const map = item.map;
    if (isRecord(map) && map.table === TABLE && typeof map.name === "string") {
      const entries: MapEntry[] = [];
      for (const elem of Array.isArray(map.elem) ? (map.elem as unknown[]) : []) {
        if (!Array.isArray(elem) || elem.length !== 2) continue;
        const verdict: unknown = elem[1];
        const target = isRecord(verdict) && isRecord(verdict.jump) ? verdict.jump.target : undefined;
        if (typeof target === "string") entries.push({ key: elem[0] as NftJson, target });
      }
      into.maps.set(map.name, entries);
    }
    const s = item.set;
    if (isRecord(s) && s.table === TABLE && typeof s.name === "string") {
      into.sets.set(s.name, Array.isArray(s.elem) ? (s.elem as NftJson[]) : []);
    }
  }
}

/** Service ids that have chains in either table. */
export function servicesOf(state: RuleState): string[] {
  const ids = new Set<string>();
  for (const name of [...state.chains.inet, ...state.chains.bridge]) {
    const m = SVC_CHAIN.exec(name);
    if (m) ids.add(m[1] as string);
  }
  return [...ids].sort();
}

/** Bridges that have network chains. */
export function networkBridgesOf(state: RuleState): string[] {
  const out = new Set<string>();
  for (const name of state.chains.inet) {
    const m = NET_CHAIN.exec(name);
    if (m) out.add(m[1] as string);
  }
  return [...out].sort();
}

const FAMILY_OF_MAP: Readonly<Record<string, Family>> = { [GUARDS]: "bridge" };

/** Deletions of every map element that jumps to one of `chains`. */
function dropEntries(state: RuleState, chains: ReadonlySet<string>): NftCommand[] {
  const out: NftCommand[] = [];
  for (const [name, entries] of state.maps) {
    const keys = entries.filter((e) => chains.has(e.target)).map((e) => e.key);
    if (keys.length > 0) out.push(element("delete", FAMILY_OF_MAP[name] ?? "inet", name, keys));
  }
  return out;
}

// --- a network ---------------------------------------------------------------------------

/** The network's chains refilled and its map elements (re)placed; the skeleton first unless `intact`. */
export function networkCommands(network: NetworkDefinition, state: RuleState, options: { skeletonIntact?: boolean } = {}): NftCommand[] {
  const { bridge, gateway } = network;
  const nat = netChain(bridge, "nat");
  const input = netChain(bridge, "input");
  const own = new Set([nat, input]);
  const onGateway = match(payload("ip", "daddr"), gateway);
  const inputRules: NftJson[][] = [[onGateway, match(payload("icmp", "type"), "echo-request"), ACCEPT]];
  if (network.dns.includes(gateway)) {
    inputRules.push([onGateway, match(payload("udp", "dport"), 53), ACCEPT]);
    inputRules.push([onGateway, match(payload("tcp", "dport"), 53), ACCEPT]);
  }
  const selfKey: NftJson = { concat: [bridge, bridge] };
  return [
    ...(options.skeletonIntact === true ? [] : skeleton(state)),
    ...dropEntries(state, own),
    ...fill("inet", nat, [
      [match(meta("oifname"), bridge, "!="), MASQUERADE],
      // A guest to a published port of its own network by a host address: without it the
      // reply would go guest to guest, past the translation.
      [match(meta("oifname"), bridge), CT_DNAT, MASQUERADE],
    ], state),
    ...fill("inet", input, inputRules, state),
    element("add", "inet", BRIDGES, [bridge]),
    element("add", "inet", BRIDGE_SELF, [selfKey]),
    element("add", "inet", NET_NAT, [[prefix(network.subnet), jump(nat)]]),
    element("add", "inet", NET_INPUT, [[bridge, jump(input)]]),
  ];
}

/** Everything of the network gone: its elements, then its chains. Nothing when none is there. */
export function removeNetworkCommands(bridge: string, state: RuleState): NftCommand[] {
  const own = new Set([netChain(bridge, "nat"), netChain(bridge, "input")]);
  const out = dropEntries(state, own);
  for (const name of [BRIDGES, BRIDGE_SELF]) {
    const present = (state.sets.get(name) ?? []).filter((e) => JSON.stringify(e) === JSON.stringify(name === BRIDGES ? bridge : { concat: [bridge, bridge] }));
    if (present.length > 0) out.push(element("delete", "inet", name, present));
  }
  for (const chain of own) if (state.chains.inet.has(chain)) out.push(deleteChain("inet", chain));
  // The last network gone and no service left: our tables go too, leaving no rule behind.
  const otherNetworks = networkBridgesOf(state).filter((b) => b !== bridge);
  if (otherNetworks.length === 0 && servicesOf(state).length === 0) {
    return dropTablesCommands(state);
  }
  return out;
}

/** Both our tables deleted, everything in them with them (those `state` shows, else both). */
export function dropTablesCommands(state?: RuleState): NftCommand[] {
  const families: Family[] = state === undefined ? ["inet", "bridge"] : (["inet", "bridge"] as const).filter((f) => state.chains[f].size > 0);
  return families.map((family) => ({ delete: { table: tableRef(family) } }));
}

// --- a service ---------------------------------------------------------------------------

function policyRules(policy: EgressPolicy): NftJson[][] {
  switch (policy.mode) {
    case "allow-all":
      return [[ACCEPT]];
    case "deny-all":
      return [[DROP]];
    case "allow":
      return [[match(payload("ip", "daddr"), { set: policy.cidrs.map(prefix) }), ACCEPT], [DROP]];
  }
}

/** The service's chains refilled and its elements swapped, in one transaction. */
export function serviceCommands(rules: ServiceRules, state: RuleState): NftCommand[] {
  const { serviceId, attachment } = rules;
  const dnat = svcChain(serviceId, "dnat");
  const egress = svcChain(serviceId, "egress");
  const guard = svcChain(serviceId, "guard");
  const dnatRules = rules.ports.map((p) => [
    ...(p.hostAddress === undefined ? [] : [match(payload("ip", "daddr"), p.hostAddress)]),
    match(meta("l4proto"), p.protocol),
    match(payload("th", "dport"), p.hostPort),
    { dnat: { family: "ip", addr: attachment.address, port: p.guestPort } },
  ]);
  const anyAddress = rules.ports.filter((p) => p.hostAddress === undefined).map((p) => [{ concat: [p.protocol, p.hostPort] }, jump(dnat)]);
  const oneAddress = rules.ports
    .filter((p) => p.hostAddress !== undefined)
    .map((p) => [{ concat: [p.hostAddress as string, p.protocol, p.hostPort] }, jump(dnat)]);
  const mac = attachment.mac.toLowerCase();
  return [
    ...dropEntries(state, new Set([dnat, egress, guard])),
    ...fill("inet", dnat, dnatRules, state),
    ...fill("inet", egress, policyRules(rules.policy), state),
    ...fill("bridge", guard, [
      [match(payload("ether", "saddr"), mac, "!="), DROP],
      [match(payload("ip", "saddr"), attachment.address, "!="), DROP],
      [match(payload("arp", "saddr ip"), attachment.address, "!="), DROP],
    ], state),
    element("add", "inet", SVC_EGRESS, [[attachment.address, jump(egress)]]),
    element("add", "bridge", GUARDS, [[attachment.hostDevice, jump(guard)]]),
    ...(anyAddress.length > 0 ? [element("add", "inet", PORTS, anyAddress)] : []),
    ...(oneAddress.length > 0 ? [element("add", "inet", PORTS_ADDR, oneAddress)] : []),
  ];
}

/** The service's elements, then its chains, gone. Nothing when it has none. */
export function removeServiceCommands(serviceId: string, state: RuleState): NftCommand[] {
  const inet = [svcChain(serviceId, "dnat"), svcChain(serviceId, "egress")];
  const guard = svcChain(serviceId, "guard");
  return [
    ...dropEntries(state, new Set([...inet, guard])),
    ...inet.filter((c) => state.chains.inet.has(c)).map((c) => deleteChain("inet", c)),
    ...(state.chains.bridge.has(guard) ? [deleteChain("bridge", guard)] : []),
  ];
}

/** Who publishes a (protocol, port) now: the service ids, by host address ("" for every address). */
export function publishedBy(state: RuleState, protocol: string, port: number): { address: string; serviceId: string }[] {
  const out: { address: string; serviceId: string }[] = [];
  const owner = (target: string) => SVC_CHAIN.exec(target)?.[1];
  for (const e of state.maps.get(PORTS) ?? []) {
    const k = isRecord(e.key) && Array.isArray(e.key.concat) ? e.key.concat : [];
    const id = owner(e.target);
    if (k[0] === protocol && k[1] === port && id !== undefined) out.push({ address: "", serviceId: id });
  }
  for (const e of state.maps.get(PORTS_ADDR) ?? []) {
    const k = isRecord(e.key) && Array.isArray(e.key.concat) ? e.key.concat : [];
    const id = owner(e.target);
    if (k[1] === protocol && k[2] === port && typeof k[0] === "string" && id !== undefined) out.push({ address: k[0], serviceId: id });
  }
  return out;
}

/** The service whose egress an address is keyed to now, if any. */
export function addressOwner(state: RuleState, address: string): string | undefined {
  const entry = (state.maps.get(SVC_EGRESS) ?? []).find((e) => e.key === address);
  return entry === undefined ? undefined : SVC_CHAIN.exec(entry.target)?.[1];
}

/** The commands as a libnftables JSON document. */
export function document(commands: readonly NftCommand[]): string {
  return JSON.stringify({ nftables: commands });
}
