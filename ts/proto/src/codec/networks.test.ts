import test from "ava";
import { ValidationError, type NetworkRecord, type ServiceRecord } from "@vmctl/core/contract";
import { vmctl } from "../gen/protos.js";
import { createNetworkFromProto, createNetworkToProto, networkFromProto, networkToProto } from "./networks.js";
import { createInputFromProto, createRequestToProto, serviceFromProto, serviceToProto } from "./services.js";

const pb = vmctl.v1;
const wire = <T>(type: { encode(m: T): { finish(): Uint8Array }; decode(b: Uint8Array): T }, message: T): T => type.decode(type.encode(message).finish());

test("a create's network, ports and policy cross the wire and come back as sent", (t) => {
  const input = {
    target: "microvm",
    network: "web",
    ports: [
      { hostPort: 8080, guestPort: 80, protocol: "tcp" as const },
      { hostPort: 5353, guestPort: 53, protocol: "udp" as const, hostAddress: "127.0.0.1" },
    ],
    networkPolicy: { mode: "allow" as const, cidrs: ["10.0.0.0/8"] },
  };
  const decoded = createInputFromProto(wire(pb.CreateServiceRequest, pb.CreateServiceRequest.fromObject(createRequestToProto(input))));
  t.is(decoded.network, "web");
  t.deepEqual(decoded.ports, input.ports);
  t.deepEqual(decoded.networkPolicy, input.networkPolicy);
  // Without them: no network at all (the engine's "none").
  const plain = createInputFromProto(wire(pb.CreateServiceRequest, pb.CreateServiceRequest.fromObject(createRequestToProto({ target: "oci" }))));
  t.false("network" in plain || "ports" in plain || "networkPolicy" in plain);
});

test("a policy mode with no name is refused naming its field; a server's unknown mode reads as deny-all", (t) => {
  const err = t.throws(() => createInputFromProto({ target: "x", networkPolicy: { mode: 9 as vmctl.v1.EgressPolicy.Mode } }), { instanceOf: ValidationError });
  t.is(err?.field, "networkPolicy.mode");
  t.is(t.throws(() => createNetworkFromProto({ name: "n", policy: {} }), { instanceOf: ValidationError })?.field, "policy.mode");
  t.deepEqual(networkFromProto({ name: "n", policy: { mode: 42 as vmctl.v1.EgressPolicy.Mode } }).policy, { mode: "deny-all" });
});

test("a service's network and a network record round-trip", (t) => {
  const network: ServiceRecord["network"] = {
    network: "default",
    address: "10.213.0.2",
    prefixLength: 24,
    gateway: "10.213.0.1",
    dns: ["1.1.1.1"],
    mac: "02:00:00:00:00:02",
    hostDevice: "vmtap-0123456789",
    ports: [{ hostPort: 8080, guestPort: 80, protocol: "tcp" }],
    policy: { mode: "deny-all" },
    ownPolicy: true,
  };
  const service: ServiceRecord = {
    id: "0123456789abcdef",
    name: "s",
    target: "microvm",
    labels: {},
    spec: {},
    dependsOn: [],
    phase: "running",
    addresses: [],
    ready: true,
    network,
    createdAt: new Date(1),
    updatedAt: new Date(2),
  };
  t.deepEqual(serviceFromProto(wire(pb.Service, pb.Service.fromObject(serviceToProto(service)))).network, network);
  const record: NetworkRecord = {
    name: "web",
    subnet: "10.88.1.0/24",
    prefixLength: 24,
    gateway: "10.88.1.1",
    bridge: "vmbr-0123456789",
    dns: [],
    policy: { mode: "allow", cidrs: ["10.0.0.0/8"] },
    services: ["0123456789abcdef"],
    createdAt: new Date(5),
  };
  t.deepEqual(networkFromProto(wire(pb.Network, pb.Network.fromObject(networkToProto(record)))), record);
  t.deepEqual(createNetworkFromProto(wire(pb.CreateNetworkRequest, pb.CreateNetworkRequest.fromObject(createNetworkToProto({ name: "web", subnet: "10.88.1.0/24", dns: ["9.9.9.9"] })))), {
    name: "web",
    subnet: "10.88.1.0/24",
    dns: ["9.9.9.9"],
  });
});
