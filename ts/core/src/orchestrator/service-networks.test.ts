// The engine's checks of a service's network that need no host: what is refused before
// anything is made (the host side itself is tested in a network namespace, in
// tests/orchestrator/network*.test.ts).
import test from "ava";
import { VmctlError } from "../errors.js";
import { openEngine, tempDir } from "../testing/fixtures.js";
import { checkSubnetPool, resolversIn } from "./service-networks.js";

const spec = { args: ["true"] };

test("ports or a policy without a network are refused naming the field; nothing is created", async (t) => {
  const engine = await openEngine(tempDir());
  t.teardown(() => engine.close());
  const cases: [Record<string, unknown>, string][] = [
    [{ ports: [{ hostPort: 8080, guestPort: 80, protocol: "tcp" }] }, "ports"],
    [{ network: "none", networkPolicy: { mode: "deny-all" } }, "networkPolicy"],
    [{ network: "Bad Name" }, "network"],
    [{ network: "web", ports: [{ hostPort: 70000, guestPort: 80, protocol: "tcp" }] }, "ports[0].hostPort"],
    [{ network: "web", networkPolicy: { mode: "allow", cidrs: ["10.0.0.0/8", "10.1"] } }, "networkPolicy.cidrs[1]"],
  ];
  for (const [fields, field] of cases) {
    const err = await t.throwsAsync(engine.create({ target: "process", spec, ...fields }), { instanceOf: VmctlError });
    t.is(err?.code, "INVALID_ARGUMENT", err?.message);
    t.is(err?.details.field, field, err?.message);
  }
  t.deepEqual(engine.list(), []);
});

test("a network on a target that gives none is FAILED_PRECONDITION naming network", async (t) => {
  const engine = await openEngine(tempDir());
  t.teardown(() => engine.close());
  const err = await t.throwsAsync(engine.create({ target: "process", spec, network: "default" }), { instanceOf: VmctlError });
  t.is(err?.code, "FAILED_PRECONDITION");
  t.is(err?.details.field, "network");
  t.regex(err?.message ?? "", /network capability/);
  t.deepEqual(engine.list(), []);
});

test("without host networking, networks are FAILED_PRECONDITION; lookups still answer", async (t) => {
  const engine = await openEngine(tempDir());
  t.teardown(() => engine.close());
  const err = await t.throwsAsync(engine.createNetwork({ name: "web" }), { instanceOf: VmctlError });
  t.is(err?.code, "FAILED_PRECONDITION");
  t.deepEqual(engine.listNetworks(), []);
  t.is(t.throws(() => engine.getNetwork("web"), { instanceOf: VmctlError })?.code, "NOT_FOUND");
  t.is(t.throws(() => engine.getNetwork("a b"), { instanceOf: VmctlError })?.code, "INVALID_ARGUMENT");
  const bad = await t.throwsAsync(engine.createNetwork({ name: "web", subnet: "10.0.0.1/24" }), { instanceOf: VmctlError });
  t.is(bad?.details.field, "subnet");
});

test("the pool and its prefix are checked; resolvers exclude loopback stubs and IPv6", (t) => {
  t.is(checkSubnetPool().prefix, 24);
  t.is(t.throws(() => checkSubnetPool("10.0.0.0/8", 12), { instanceOf: VmctlError })?.details.field, "network.poolPrefix");
  t.is(t.throws(() => checkSubnetPool("10.0.0.1/8", 24), { instanceOf: VmctlError })?.details.field, "network.pool");
  t.deepEqual(resolversIn("# x\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nnameserver ::1\nnameserver 1.1.1.1\nnameserver 10.0.0.2\n"), ["10.0.0.2", "1.1.1.1"]);
});
