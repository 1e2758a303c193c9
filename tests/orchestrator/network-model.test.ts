// Property-based: random sequences of network and service creates and deletes against a
// real vmctld in a network namespace of its own. Whatever the sequence, after every step:
// subnets never overlap (each other, the host's uplink), an address is held once and is a
// guest address of its subnet, a published port once, the namespace holds exactly the
// services' TAPs (each on its network's bridge) and the networks' bridges, the rules name
// no address no service holds, and every refusal is a documented code naming its field.
import test from "ava";
import fc from "fast-check";
import { VmctlError, type ServiceRecord } from "@vmctl/client";
import { NETTAP_FIXTURE, TestNetns, UPLINK_SUBNET } from "./helpers/netns.js";
import { Daemon, sandbox, teardown, type Sandbox } from "./helpers/sandbox.js";

const RUNS = Number(process.env.VMCTL_NETWORK_MODEL_RUNS ?? 40);
/** How each kind of step ended ("createService OK", "createNetwork INVALID_ARGUMENT"...). */
const tally: Record<string, number> = {};

let sb: Sandbox;
let ns: TestNetns;
let daemon: Daemon;

test.before(async () => {
  sb = sandbox("vmctl-network-model-");
  ns = TestNetns.create("vmctl-model");
  daemon = await Daemon.start(sb, { plugins: [NETTAP_FIXTURE], extraArgs: ["--no-builtins", "--log-level", "warn"], wrap: (argv) => ns.wrap(argv) });
});

test.after.always(async () => {
  if (sb) await teardown(sb, [daemon]);
  ns?.remove();
});

type Op =
  | { op: "createNetwork"; name: string; subnet?: string }
  | { op: "deleteNetwork"; name: string }
  | { op: "createService"; name: string; network: string; ports: { hostPort: number; guestPort: number; protocol: "tcp" | "udp" }[]; deny: boolean }
  | { op: "deleteService"; name: string };

const NETWORKS = ["n0", "n1", "n2", "default"];
const SERVICES = ["s0", "s1", "s2", "s3"];
const createNetwork = fc.record({
  op: fc.constant("createNetwork" as const),
  name: fc.constantFrom(...NETWORKS),
  subnet: fc.option(fc.constantFrom("10.90.0.0/24", "10.90.0.0/23", "10.90.1.0/29", "10.90.1.8/29", "192.0.2.0/25", "10.213.0.0/24"), { nil: undefined }),
});
const createService = fc.record({
  op: fc.constant("createService" as const),
  name: fc.constantFrom(...SERVICES),
  // "default" most: it is always there (made on first use).
  network: fc.constantFrom("default", "default", "default", "n0", "n1", "n2", "nope"),
  ports: fc.uniqueArray(
    fc.record({ hostPort: fc.integer({ min: 20_000, max: 20_003 }), guestPort: fc.constant(80), protocol: fc.constantFrom("tcp" as const, "udp" as const) }),
    { maxLength: 2, selector: (p) => `${p.protocol}${p.hostPort}` },
  ),
  deny: fc.boolean(),
});
// Services come and go most.
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 1, arbitrary: createNetwork },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("deleteNetwork" as const), name: fc.constantFrom(...NETWORKS) }) },
  { weight: 3, arbitrary: createService },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("deleteService" as const), name: fc.constantFrom(...SERVICES) }) },
);

/** Codes (and fields) each step may be refused with. */
const ALLOWED: Record<Op["op"], readonly string[]> = {
  createNetwork: ["ALREADY_EXISTS name", "INVALID_ARGUMENT subnet", "RESOURCE_EXHAUSTED subnet"],
  deleteNetwork: ["NOT_FOUND name", "FAILED_PRECONDITION name"],
  createService: ["ALREADY_EXISTS name", "NOT_FOUND network", "ALREADY_EXISTS ports[0].hostPort", "ALREADY_EXISTS ports[1].hostPort", "RESOURCE_EXHAUSTED network"],
  deleteService: ["NOT_FOUND undefined"],
};

async function apply(step: Op): Promise<void> {
  const c = daemon.client;
  const count = (outcome: string): void => void (tally[`${step.op} ${outcome}`] = (tally[`${step.op} ${outcome}`] ?? 0) + 1);
  try {
    if (step.op === "createNetwork") await c.createNetwork({ name: step.name, ...(step.subnet === undefined ? {} : { subnet: step.subnet }) });
    else if (step.op === "deleteNetwork") await c.deleteNetwork(step.name);
    else if (step.op === "deleteService") await c.delete(step.name, { force: true });
    else {
      await c.create({
        name: step.name,
        target: "nettap",
        spec: {},
        network: step.network,
        ports: step.ports,
        ...(step.deny ? { networkPolicy: { mode: "deny-all" } } : {}),
        start: true,
      });
    }
    count("OK");
  } catch (err) {
    if (!(err instanceof VmctlError)) throw err;
    count(err.code);
    const outcome = `${err.code} ${err.details.field}`;
    if (!ALLOWED[step.op].includes(outcome)) throw new Error(`${JSON.stringify(step)} was refused ${outcome}: ${err.message}`);
  }
}

function range(cidr: string): [number, number] {
  const [address = "", prefix = "32"] = cidr.split("/");
  const base = address.split(".").reduce((n, p) => n * 256 + Number(p), 0);
  return [base, base + 2 ** (32 - Number(prefix)) - 1];
}
const number = (address: string): number => range(address)[0];

async function checkInvariants(after: string): Promise<void> {
  const networks = await daemon.client.listNetworks();
  const services: ServiceRecord[] = await daemon.client.list({ phases: [] });
  const fail = (what: string): never => {
    throw new Error(`${what}, after ${after}`);
  };
  for (const [i, a] of networks.entries()) {
    for (const b of [...networks.slice(i + 1).map((n) => n.subnet), UPLINK_SUBNET]) {
      const [a0, a1] = range(a.subnet);
      const [b0, b1] = range(b);
      if (a0 <= b1 && b0 <= a1) fail(`${a.name} ${a.subnet} overlaps ${b}`);
    }
  }
  const held = new Set<string>();
  const published = new Set<string>();
  for (const s of services) {
    const n = s.network;
    const network = networks.find((x) => x.name === n?.network);
    if (n === undefined || network === undefined) return fail(`${s.name} has no network`);
    const [lo, hi] = range(network.subnet);
    const a = number(n.address);
    if (a <= lo + 1 || a >= hi) fail(`${s.name} holds ${n.address}, not a guest address of ${network.subnet}`);
    if (held.has(n.address)) fail(`${n.address} is held twice`);
    held.add(n.address);
    for (const p of n.ports) {
      if (published.has(`${p.protocol} ${p.hostPort}`)) fail(`${p.protocol} ${p.hostPort} is published twice`);
      published.add(`${p.protocol} ${p.hostPort}`);
    }
    if (!network.services.includes(s.id)) fail(`network ${network.name} does not list ${s.name}`);
  }
  const links = ns.links();
  const taps = new Map(links.filter((l) => l.ifname.startsWith("vmtap-")).map((l) => [l.ifname, l.master]));
  const want = new Map(services.map((s) => [s.network?.hostDevice, networks.find((n) => n.name === s.network?.network)?.bridge]));
  if (JSON.stringify([...taps].sort()) !== JSON.stringify([...want].sort())) fail(`TAPs ${JSON.stringify([...taps])} != the services' ${JSON.stringify([...want])}`);
  const bridges = links.filter((l) => l.ifname.startsWith("vmbr-")).map((l) => l.ifname).sort();
  if (JSON.stringify(bridges) !== JSON.stringify(networks.map((n) => n.bridge).sort())) fail(`bridges ${bridges} != the networks' ${networks.map((n) => n.bridge)}`);
  const gateways = new Set(networks.flatMap((n) => [n.gateway, n.subnet.split("/")[0]]));
  for (const m of ns.rulesetText().matchAll(/\b(10\.(?:90|213)\.\d{1,3}\.\d{1,3})\b/g)) {
    const address = m[1] as string;
    if (!gateways.has(address) && !held.has(address)) fail(`a rule names ${address}, which no service holds`);
  }
}

async function reset(): Promise<void> {
  for (const s of await daemon.client.list({ phases: [] })) await daemon.client.delete(s.id, { force: true });
  for (const n of await daemon.client.listNetworks()) await daemon.client.deleteNetwork(n.name);
}

test.serial("any sequence of network and service creates and deletes keeps every address, port, TAP, bridge and rule accounted for", async (t) => {
  t.timeout(600_000);
  let steps = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 24 }), async (ops) => {
      await reset();
      for (const [i, step] of ops.entries()) {
        await apply(step);
        steps++;
        await checkInvariants(`step ${i + 1} of ${JSON.stringify(ops)}`);
      }
    }),
    { numRuns: RUNS, endOnFailure: true },
  );
  await reset();
  await checkInvariants("the last reset");
  t.deepEqual(ns.links().filter((l) => /^vm(tap|br)-/.test(l.ifname)), []);
  t.log(`${RUNS} sequences, ${steps} steps: ${JSON.stringify(tally)}`);
  for (const kind of ["createNetwork OK", "deleteNetwork OK", "createService OK", "deleteService OK", "createService ALREADY_EXISTS", "deleteNetwork FAILED_PRECONDITION"]) {
    t.true((tally[kind] ?? 0) > 0, `no step ended ${kind}: the sequences tested too little`);
  }
});
