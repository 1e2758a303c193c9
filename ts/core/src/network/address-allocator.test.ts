import test from "ava";
import fc from "fast-check";
import { isGuestAddress, pickAddress, pickSubnet, planSubnet } from "./address-allocator.js";
import { formatCidr, parseCidr } from "./ipv4.js";

test("a /24: the gateway is .1, guests .2 to .254; the network and broadcast addresses are nobody's", (t) => {
  const plan = planSubnet(parseCidr("10.213.4.0/24", "subnet"));
  t.is(plan.gateway, "10.213.4.1");
  t.is(pickAddress(plan, new Set()), "10.213.4.2");
  t.is(pickAddress(plan, new Set(["10.213.4.2", "10.213.4.3"])), "10.213.4.4");
  t.false(isGuestAddress(plan, "10.213.4.0"));
  t.false(isGuestAddress(plan, "10.213.4.1"));
  t.false(isGuestAddress(plan, "10.213.4.255"));
  t.true(isGuestAddress(plan, "10.213.4.254"));
  const all = new Set<string>();
  for (let address = pickAddress(plan, all); address !== undefined; address = pickAddress(plan, all)) all.add(address);
  t.is(all.size, 253);
});

test("a /29 holds five guests, then it is full", (t) => {
  const plan = planSubnet(parseCidr("192.168.50.8/29", "subnet"));
  const taken = new Set<string>();
  for (let i = 0; i < 5; i++) taken.add(pickAddress(plan, taken) as string);
  t.deepEqual([...taken], ["192.168.50.10", "192.168.50.11", "192.168.50.12", "192.168.50.13", "192.168.50.14"]);
  t.is(pickAddress(plan, taken), undefined);
});

test("whatever is taken, the address picked is a free guest address of the subnet", (t) => {
  const plan = planSubnet(parseCidr("10.1.0.0/26", "subnet"));
  t.notThrows(() =>
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 0, max: 63 }), { maxLength: 64 }), (hosts) => {
        const taken = new Set(hosts.map((h) => `10.1.0.${h}`));
        const picked = pickAddress(plan, taken);
        const free = Array.from({ length: 61 }, (_, i) => `10.1.0.${i + 2}`).filter((a) => !taken.has(a));
        return picked === undefined ? free.length === 0 : !taken.has(picked) && isGuestAddress(plan, picked) && picked === free[0];
      }),
    ),
  );
});

test("subnets from a pool skip every used one that overlaps, and run out", (t) => {
  const pool = parseCidr("10.213.0.0/16", "pool");
  const pick = (used: string[]) => {
    const subnet = pickSubnet(pool, 24, used.map((u) => parseCidr(u, "u", { loose: true })));
    return subnet === undefined ? undefined : formatCidr(subnet);
  };
  t.is(pick([]), "10.213.0.0/24");
  t.is(pick(["10.213.0.0/24", "10.213.1.128/25"]), "10.213.2.0/24");
  t.is(pick(["10.213.0.5/32"]), "10.213.1.0/24");
  t.is(pick(["10.0.0.0/8"]), undefined);
  t.is(pick(["10.213.0.0/17"]), "10.213.128.0/24");
});
