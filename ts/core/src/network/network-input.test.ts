import test from "ava";
import fc from "fast-check";
import { ValidationError } from "../errors.js";
import {
  checkDeviceName,
  checkDns,
  checkMac,
  checkNetworkName,
  checkPolicy,
  checkPorts,
  checkSubnet,
  formatPolicy,
  parsePolicy,
  parsePublish,
} from "./network-input.js";
import { bridgeName, hostDeviceName, macFor } from "./network-names.js";

/** The ValidationError `fn` throws, with its field. */
function refusal(t: import("ava").ExecutionContext, fn: () => unknown, field: string, message?: RegExp): void {
  const err = t.throws(fn, { instanceOf: ValidationError });
  t.is(err?.field, field, err?.message);
  if (message !== undefined) t.regex(err?.message ?? "", message);
}

test("published ports: checked, tcp by default, 0.0.0.0 meaning every address, no clash within a request", (t) => {
  t.deepEqual(checkPorts([{ hostPort: 8080, guestPort: 80 }]), [{ hostPort: 8080, guestPort: 80, protocol: "tcp" }]);
  t.deepEqual(checkPorts([{ hostPort: 53, guestPort: 53, protocol: "udp", hostAddress: "0.0.0.0" }]), [{ hostPort: 53, guestPort: 53, protocol: "udp" }]);
  t.deepEqual(checkPorts([{ hostPort: 53, guestPort: 53, protocol: "tcp" }, { hostPort: 53, guestPort: 53, protocol: "udp" }]).length, 2);
  refusal(t, () => checkPorts([{ hostPort: 0, guestPort: 80 }]), "ports[0].hostPort", /1-65535/);
  refusal(t, () => checkPorts([{ hostPort: 80, guestPort: 65536 }]), "ports[0].guestPort");
  refusal(t, () => checkPorts([{ hostPort: 80.5, guestPort: 80 }]), "ports[0].hostPort");
  refusal(t, () => checkPorts([{ hostPort: "80", guestPort: 80 }]), "ports[0].hostPort");
  refusal(t, () => checkPorts([{ hostPort: 80, guestPort: 80, protocol: "sctp" }]), "ports[0].protocol");
  refusal(t, () => checkPorts([{ hostPort: 80, guestPort: 80, hostAddress: "224.0.0.1" }]), "ports[0].hostAddress", /unicast/);
  refusal(t, () => checkPorts([{ hostPort: 80, guestPort: 80, hostAddress: "1.2.3" }]), "ports[0].hostAddress");
  refusal(t, () => checkPorts([{ hostPort: 80, guestPort: 80 }, { hostPort: 80, guestPort: 81, hostAddress: "127.0.0.1" }]), "ports[1].hostPort", /ports\[0\]/);
  refusal(t, () => checkPorts("80:80"), "ports");
  refusal(t, () => checkPorts(Array.from({ length: 65 }, (_, i) => ({ hostPort: i + 1, guestPort: 1 }))), "ports", /at most 64/);
});

test("-p as docker spells it: [HOST_ADDRESS:]HOST_PORT:GUEST_PORT[/proto]", (t) => {
  t.deepEqual(parsePublish("8080:80"), { hostPort: 8080, guestPort: 80, protocol: "tcp" });
  t.deepEqual(parsePublish("127.0.0.1:5353:53/udp"), { hostPort: 5353, guestPort: 53, protocol: "udp", hostAddress: "127.0.0.1" });
  refusal(t, () => parsePublish("80"), "ports");
  refusal(t, () => parsePublish("a:b:c:d"), "ports");
  refusal(t, () => parsePublish("99999:80", "ports[2]"), "ports[2].hostPort");
  refusal(t, () => parsePublish("80:80/icmp", "ports[1]"), "ports[1].protocol");
  // Every port pair and protocol reads back as written.
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 65535 }), fc.integer({ min: 1, max: 65535 }), fc.constantFrom("tcp", "udp"), (host, guest, protocol) => {
      const port = parsePublish(`${host}:${guest}/${protocol}`);
      return port.hostPort === host && port.guestPort === guest && port.protocol === protocol;
    }),
  );
});

test("egress policies: three modes, CIDRs in canonical form, a CIDR that does not parse is named", (t) => {
  t.deepEqual(checkPolicy({ mode: "deny-all" }), { mode: "deny-all" });
  t.deepEqual(checkPolicy({ mode: "allow", cidrs: ["10.0.0.0/8", "1.1.1.1", "1.1.1.1/32"] }), { mode: "allow", cidrs: ["10.0.0.0/8", "1.1.1.1/32"] });
  refusal(t, () => checkPolicy({ mode: "allow", cidrs: ["10.0.0.0/8", "10.0.0.1/8"] }), "networkPolicy.cidrs[1]", /host bits/);
  refusal(t, () => checkPolicy({ mode: "allow", cidrs: ["300.0.0.0/8"] }), "networkPolicy.cidrs[0]");
  refusal(t, () => checkPolicy({ mode: "allow", cidrs: ["10.0.0.0/33"] }), "networkPolicy.cidrs[0]", /prefix/);
  refusal(t, () => checkPolicy({ mode: "allow", cidrs: [] }), "networkPolicy.cidrs");
  refusal(t, () => checkPolicy({ mode: "deny-all", cidrs: ["10.0.0.0/8"] }), "networkPolicy.cidrs");
  refusal(t, () => checkPolicy({ mode: "allow-some" }), "networkPolicy.mode");
  refusal(t, () => checkPolicy("deny-all"), "networkPolicy");
  t.deepEqual(parsePolicy("allow:10.0.0.0/8,192.168.1.1"), { mode: "allow", cidrs: ["10.0.0.0/8", "192.168.1.1/32"] });
  t.is(formatPolicy(parsePolicy("allow:10.0.0.0/8")), "allow:10.0.0.0/8");
  t.deepEqual(parsePolicy("deny-all"), { mode: "deny-all" });
  refusal(t, () => parsePolicy("allow:10.0.0.0/8,nope"), "networkPolicy.cidrs[1]");
  refusal(t, () => parsePolicy("block"), "networkPolicy");
});

test("subnets: /16 to /29, host bits clear, never loopback, link-local or multicast space", (t) => {
  t.deepEqual(checkSubnet("10.88.1.0/24"), { base: (10 * 256 + 88) * 65536 + 256, prefix: 24 });
  refusal(t, () => checkSubnet("10.88.1.1/24"), "subnet", /host bits/);
  refusal(t, () => checkSubnet("10.0.0.0/8"), "subnet", /\/16 to \/29/);
  refusal(t, () => checkSubnet("10.0.0.0/30"), "subnet");
  refusal(t, () => checkSubnet("127.1.0.0/16"), "subnet", /loopback/);
  refusal(t, () => checkSubnet("169.254.0.0/24"), "subnet", /link-local/);
  refusal(t, () => checkSubnet("239.1.0.0/24"), "subnet", /multicast/);
  refusal(t, () => checkSubnet("fd00::/64"), "subnet");
});

test("resolvers: unicast IPv4 addresses, no repeats, at most 8", (t) => {
  t.deepEqual(checkDns(["1.1.1.1", "1.1.1.1", "9.9.9.9"]), ["1.1.1.1", "9.9.9.9"]);
  refusal(t, () => checkDns(["1.1.1.1", "0.0.0.0"]), "dns[1]", /unicast/);
  refusal(t, () => checkDns(["dns.example"]), "dns[0]");
  refusal(t, () => checkDns(Array.from({ length: 9 }, (_, i) => `10.0.0.${i + 1}`)), "dns", /at most 8/);
});

test("names: a network's name, a MAC that must be unicast, an interface name Linux takes", (t) => {
  t.is(checkNetworkName("none", "network", { allowNone: true }), "none");
  refusal(t, () => checkNetworkName("none", "name"), "name", /reserved/);
  refusal(t, () => checkNetworkName("Bad Name", "name"), "name");
  refusal(t, () => checkNetworkName("x".repeat(64), "name"), "name");
  t.is(checkMac("02:AB:cd:00:00:01", "mac"), "02:ab:cd:00:00:01");
  refusal(t, () => checkMac("01:00:5e:00:00:01", "mac"), "mac", /multicast/);
  refusal(t, () => checkMac("ff:ff:ff:ff:ff:ff", "mac"), "mac", /multicast/);
  refusal(t, () => checkMac("00:00:00:00:00:00", "mac"), "mac");
  refusal(t, () => checkMac("02:00:00:00:00", "mac"), "mac");
  t.is(checkDeviceName("vmtap-123456789", "tap"), "vmtap-123456789");
  refusal(t, () => checkDeviceName("vmtap-1234567890", "tap"), "tap", /at most 15/);
  refusal(t, () => checkDeviceName("a/b", "tap"), "tap");
  refusal(t, () => checkDeviceName("", "tap"), "tap");
});

test("derived names: stable, at most 15 bytes, MACs locally administered unicast, none alike for different ids", (t) => {
  t.is(bridgeName("default"), bridgeName("default"));
  fc.assert(
    fc.property(fc.stringMatching(/^[0-9a-f]{16}$/), fc.stringMatching(/^[a-z0-9][a-z0-9_.-]{0,62}$/), (id, network) => {
      const mac = macFor(id);
      return (
        hostDeviceName(id).length === 15 &&
        bridgeName(network).length === 15 &&
        checkDeviceName(hostDeviceName(id), "d") !== "" &&
        mac.startsWith("02:") &&
        checkMac(mac, "mac") === mac
      );
    }),
  );
  const ids = Array.from({ length: 2000 }, (_, i) => i.toString(16).padStart(16, "0"));
  t.is(new Set(ids.map(hostDeviceName)).size, ids.length);
  t.is(new Set(ids.map(macFor)).size, ids.length);
});
