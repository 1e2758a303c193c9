import test from "ava";
import { VmctlError } from "../errors.js";
import { pickAddress, planSubnet } from "../network/address-allocator.js";
import { parseCidr } from "../network/ipv4.js";
import { bridgeName, hostDeviceName, macFor } from "../network/network-names.js";
import type { NetworkDefinition } from "../network/types.js";
import { tempDir } from "../testing/fixtures.js";
import { StateStore } from "./state-store.js";

const svc = (id: string) => ({ id, name: `s-${id}`, target: "process", labels: {}, spec: {}, dependsOn: [] });
const net = (name: string, subnet: string): NetworkDefinition => ({
  name,
  subnet,
  gateway: planSubnet(parseCidr(subnet, "subnet")).gateway,
  bridge: bridgeName(name),
  dns: ["1.1.1.1"],
  policy: { mode: "allow-all" },
});
const lease = (store: StateStore, id: string, network: string, ports: { hostPort: number; guestPort: number; protocol: "tcp" | "udp" }[] = []) => {
  const plan = planSubnet(parseCidr(store.networks.network(network)?.subnet ?? "", "subnet"));
  return store.networks.lease({ serviceId: id, network, mac: macFor(id), hostDevice: hostDeviceName(id), ports }, (taken) => pickAddress(plan, taken));
};
const id = (n: number) => n.toString(16).padStart(16, "0");

test("networks and leases survive a reopen; a lease shows on its service", (t) => {
  const dir = tempDir();
  let store = StateStore.open(dir);
  store.networks.createNetwork(net("web", "10.213.7.0/24"));
  store.reserve(svc(id(1)));
  const first = lease(store, id(1), "web", [{ hostPort: 8080, guestPort: 80, protocol: "tcp" }]);
  t.is(first.address, "10.213.7.2");
  store.close();
  store = StateStore.open(dir);
  t.teardown(() => store.close());
  t.like(store.networks.network("web"), { subnet: "10.213.7.0/24", gateway: "10.213.7.1", dns: ["1.1.1.1"] });
  t.like(store.networks.leaseOf(id(1)), { address: "10.213.7.2", hostDevice: hostDeviceName(id(1)) });
  t.like(store.get(id(1))?.network, { network: "web", address: "10.213.7.2", prefixLength: 24, gateway: "10.213.7.1", ownPolicy: false });
  t.like(store.list({ all: true })[0]?.network, { address: "10.213.7.2" });
});

test("no address is leased twice; a released one is leased again; the subnet runs out with RESOURCE_EXHAUSTED", (t) => {
  const store = StateStore.open(tempDir());
  t.teardown(() => store.close());
  store.networks.createNetwork(net("tiny", "10.213.9.8/29"));
  const addresses: string[] = [];
  for (let i = 1; i <= 5; i++) {
    store.reserve(svc(id(i)));
    addresses.push(lease(store, id(i), "tiny").address);
  }
  t.is(new Set(addresses).size, 5);
  store.reserve(svc(id(6)));
  const err = t.throws(() => lease(store, id(6), "tiny"), { instanceOf: VmctlError });
  t.is(err?.code, "RESOURCE_EXHAUSTED");
  t.is(err?.details.field, "network");
  // A service forgotten takes its lease with it (the row cascades).
  store.remove(id(3));
  t.is(store.networks.leaseOf(id(3)), undefined);
  t.is(lease(store, id(6), "tiny").address, addresses[2] as string);
  // Even a lease written past the allocator cannot repeat an address (UNIQUE).
  store.reserve(svc(id(7)));
  const dup = t.throws(() => store.networks.lease({ serviceId: id(7), network: "tiny", mac: macFor(id(7)), hostDevice: hostDeviceName(id(7)), ports: [] }, () => addresses[0]), {
    instanceOf: VmctlError,
  });
  t.regex(dup?.message ?? "", /UNIQUE/);
});

test("a network with leases cannot be deleted; a name or subnet taken is refused", (t) => {
  const store = StateStore.open(tempDir());
  t.teardown(() => store.close());
  store.networks.createNetwork(net("a", "10.213.1.0/24"));
  t.is(t.throws(() => store.networks.createNetwork(net("a", "10.213.2.0/24")), { instanceOf: VmctlError })?.code, "ALREADY_EXISTS");
  t.is(t.throws(() => store.networks.createNetwork(net("b", "10.213.1.0/24")), { instanceOf: VmctlError })?.details.field, "subnet");
  store.reserve(svc(id(1)));
  lease(store, id(1), "a");
  const err = t.throws(() => store.networks.deleteNetwork("a"), { instanceOf: VmctlError });
  t.is(err?.code, "FAILED_PRECONDITION");
  t.regex(err?.message ?? "", new RegExp(id(1)));
  store.networks.release(id(1));
  t.true(store.networks.deleteNetwork("a"));
  t.false(store.networks.deleteNetwork("a"));
  t.deepEqual(store.integrityCheck(), { ok: true, messages: ["ok"] });
});

test("a check inside the lease's transaction refuses it and writes nothing", (t) => {
  const store = StateStore.open(tempDir());
  t.teardown(() => store.close());
  store.networks.createNetwork(net("a", "10.213.1.0/24"));
  store.reserve(svc(id(1)));
  const refuse = (): void => {
    throw new VmctlError("ALREADY_EXISTS", "ports[0].hostPort: taken");
  };
  const request = { serviceId: id(1), network: "a", mac: macFor(id(1)), hostDevice: hostDeviceName(id(1)), ports: [] };
  t.is(t.throws(() => store.networks.lease(request, () => "10.213.1.2", refuse), { instanceOf: VmctlError })?.code, "ALREADY_EXISTS");
  t.deepEqual(store.networks.leases(), []);
});
