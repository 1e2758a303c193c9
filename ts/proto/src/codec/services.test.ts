import test from "ava";
import { ValidationError, type ServiceRecord } from "@vmctl/core/contract";
import { google, vmctl } from "../gen/protos.js";
import { structFromJson } from "../struct.js";
import { eventKind, logStream, servicePhase } from "./enums.js";
import {
  createInputFromProto,
  createRequestToProto,
  eventFromProto,
  eventToProto,
  exitFromProto,
  exitToProto,
  filterFromProto,
  filterToProto,
  logChunkFromProto,
  logChunkToProto,
  readinessFromProto,
  serviceFromProto,
  serviceToProto,
  targetFromProto,
  targetToProto,
} from "./services.js";

const pb = vmctl.v1;

test("a create request with the run shorthand becomes the engine's input", (t) => {
  const wire = pb.CreateServiceRequest.decode(
    pb.CreateServiceRequest.encode({
      target: "oci",
      labels: { a: "b" },
      spec: structFromJson({ cwd: "/" }),
      run: { image: "/rootfs", command: ["sh", "-c", "true"], env: { K: "V" }, mounts: [{ source: "/src", destination: "/work", readOnly: true }], copyOut: ["/work/out"] },
      start: true,
      readiness: { tcp: { port: 80 }, timeoutMs: 5000 },
    }).finish(),
  );
  t.deepEqual(createInputFromProto(wire), {
    target: "oci",
    spec: { cwd: "/" },
    labels: { a: "b" },
    dependsOn: [],
    readiness: { check: { kind: "tcp", port: 80 }, timeoutMs: 5000 },
    start: true,
    run: { image: "/rootfs", command: ["sh", "-c", "true"], env: { K: "V" }, mounts: [{ source: "/src", destination: "/work", readOnly: true }], copyOut: ["/work/out"] },
  });
  const plain = createInputFromProto(pb.CreateServiceRequest.decode(pb.CreateServiceRequest.encode({ target: "oci" }).finish()));
  t.is(plain.spec, undefined);
  t.is(plain.run, undefined);
  const noImage = createInputFromProto(pb.CreateServiceRequest.decode(pb.CreateServiceRequest.encode({ target: "x", run: { command: ["a"] } }).finish()));
  t.deepEqual(noImage.run, { command: ["a"], env: {}, mounts: [], copyOut: [] });
  t.deepEqual(noImage.spec, {});
});

test("a service record round-trips its fields onto the wire", (t) => {
  const at = new Date(1_700_000_000_000);
  const record: ServiceRecord = {
    id: "0123456789abcdef",
    name: "web",
    target: "oci",
    labels: { tier: "front" },
    spec: { rootfs: "/r", args: ["true"] },
    dependsOn: [],
    phase: "exited",
    exit: { code: null, signal: "SIGKILL", reason: "stopped", at },
    addresses: [],
    ready: false,
    status: "target oci unavailable",
    createdAt: at,
    updatedAt: at,
  };
  const wire = pb.Service.decode(pb.Service.encode(serviceToProto(record)).finish());
  t.is(wire.phase, pb.Phase.PHASE_EXITED);
  t.is(wire.exit?.signal, "SIGKILL");
  t.false(wire.exit?.code != null);
  t.is(wire.status, "target oci unavailable");
  t.is(Number(String(wire.createdUnixMs)), at.getTime());
});

test("list filters: phases by enum, unknown phase names the field", (t) => {
  t.deepEqual(filterFromProto({ labels: ["a=b"], target: "oci", phases: [pb.Phase.PHASE_RUNNING] }), {
    labels: ["a=b"],
    target: "oci",
    phases: ["running"],
  });
  t.throws(() => filterFromProto({ phases: [99 as vmctl.v1.Phase] }), { message: /^phases\[0\]: / });
});

test("request_id reaches the engine as requestId; absent stays absent", (t) => {
  const wire = (req: vmctl.v1.ICreateServiceRequest) => pb.CreateServiceRequest.decode(pb.CreateServiceRequest.encode(req).finish());
  t.is(createInputFromProto(wire({ target: "oci", requestId: "550e8400-e29b-41d4-a716-446655440000" })).requestId, "550e8400-e29b-41d4-a716-446655440000");
  t.false("requestId" in createInputFromProto(wire({ target: "oci" })));
});

test("a spec nested past what JSON conversion takes is INVALID_ARGUMENT naming the path, not a stack overflow", (t) => {
  let value: google.protobuf.IValue = { nullValue: 0 };
  for (let i = 0; i < 10_000; i++) value = { structValue: { fields: { a: value } } };
  const err = t.throws(() => createInputFromProto({ target: "oci", spec: { fields: { a: value } } }), { instanceOf: ValidationError });
  t.regex(err.field, /^spec(\.a)+$/);
  t.regex(err.message, /nested more than 100 levels deep$/);
});

/** `message` through its bytes, as the other end decodes it. */
function wire<T>(type: { encode(m: T): { finish(): Uint8Array }; decode(b: Uint8Array): T }, message: T): T {
  return type.decode(type.encode(message).finish());
}

const at = new Date(1_700_000_000_000);
const record: ServiceRecord = {
  id: "0123456789abcdef",
  name: "web",
  target: "oci",
  labels: { tier: "front" },
  spec: { rootfs: "/r", args: ["true"], n: 1.5, deep: { x: null } },
  dependsOn: ["db"],
  readiness: { check: { kind: "http", url: "http://x/", expectStatus: 204 }, intervalMs: 50 },
  phase: "exited",
  exit: { code: 3, reason: "exited", detail: "it said no", at },
  pid: 42,
  instance: "c-1",
  addresses: ["10.0.0.2"],
  ready: true,
  status: "target oci unavailable",
  createdAt: at,
  updatedAt: new Date(at.getTime() + 1),
};

test("every service message the server sends decodes on the client to what the engine had", (t) => {
  t.deepEqual(serviceFromProto(wire(pb.Service, serviceToProto(record) as vmctl.v1.Service)), record);
  const { readiness: _r, exit: _e, pid: _p, instance: _i, status: _s, ...rest } = record;
  const bare: ServiceRecord = { ...rest, phase: "running", ready: false };
  t.deepEqual(serviceFromProto(wire(pb.Service, serviceToProto(bare) as vmctl.v1.Service)), bare);

  for (const kind of ["snapshot", "created", "updated", "deleted"] as const) {
    t.deepEqual(eventFromProto(wire(pb.ServiceEvent, eventToProto({ kind, service: record, at }) as vmctl.v1.ServiceEvent)), { kind, service: record, at });
  }
  for (const stream of ["stdout", "stderr", "console"] as const) {
    const chunk = { stream, data: Buffer.from([1, 2]), time: at }; // protobufjs decodes bytes as a Buffer in Node
    t.deepEqual(logChunkFromProto(wire(pb.LogChunk, logChunkToProto(chunk) as vmctl.v1.LogChunk)), chunk);
  }
  for (const exit of [{ code: null, signal: "SIGKILL", reason: "stopped", at }, { code: 0, reason: "exited", at }]) {
    t.deepEqual(exitFromProto(wire(pb.ExitInfo, exitToProto(exit) as vmctl.v1.ExitInfo)), exit);
  }
  const target = { name: "oci", plugin: "vmctl-plugin-oci", status: "ready", capabilities: { exec: true, pause: false, network: true, volumes: false, logsFollow: true, copy: true } };
  t.deepEqual(targetFromProto(wire(pb.Target, targetToProto(target) as vmctl.v1.Target)), target);
});

test("what the client sends decodes on the server to the engine's input", (t) => {
  const input = {
    name: "web",
    requestId: "r-1",
    target: "oci",
    spec: { cwd: "/", list: [1, "a", true, null] },
    labels: { a: "b" },
    dependsOn: ["db"],
    readiness: { check: { kind: "command" as const, args: ["true"] }, timeoutMs: 9 },
    start: true,
    run: { image: "alpine", command: ["sh"], env: { K: "V" }, mounts: [{ source: "/a", destination: "/b" }, { source: "/é", destination: "/c", readOnly: true }], copyOut: ["/b/out"] },
  };
  t.deepEqual(createInputFromProto(wire(pb.CreateServiceRequest, createRequestToProto(input) as vmctl.v1.CreateServiceRequest)), input);
  t.deepEqual(createInputFromProto(wire(pb.CreateServiceRequest, createRequestToProto({ target: "x" }) as vmctl.v1.CreateServiceRequest)), {
    target: "x",
    spec: undefined,
    labels: {},
    dependsOn: [],
    start: false,
  });
  const filter = { labels: ["a=b"], target: "oci", phases: ["created", "waiting", "starting", "running", "paused", "stopping", "exited"] as const };
  t.deepEqual(filterFromProto(wire(pb.ListServicesRequest, filterToProto(filter) as vmctl.v1.ListServicesRequest)), { ...filter, phases: [...filter.phases] });
  t.deepEqual(filterFromProto(wire(pb.ListServicesRequest, filterToProto({}) as vmctl.v1.ListServicesRequest)), { labels: [], phases: [] });
});

test("client input is validated, naming the field; server answers are read leniently", (t) => {
  const noCheck = t.throws(() => createInputFromProto({ target: "oci", readiness: { timeoutMs: 5 } }), { instanceOf: ValidationError });
  t.is(noCheck.field, "readiness.check");
  t.is(readinessFromProto(undefined), undefined);
  const phase = t.throws(() => filterFromProto({ phases: [pb.Phase.PHASE_RUNNING, pb.Phase.PHASE_UNSPECIFIED] }), { instanceOf: ValidationError });
  t.is(phase.message, "phases[1]: unknown phase 0");

  // A newer server's values read as defaults; a readiness without a check is left out.
  const service = serviceFromProto({ phase: 99 as vmctl.v1.Phase, readiness: { timeoutMs: 5 } });
  t.is(service.phase, "created");
  t.false("readiness" in service);
  t.is(eventFromProto({ kind: 99 as vmctl.v1.ServiceEvent.Kind }).kind, "updated");
  t.is(logChunkFromProto({ stream: 99 as vmctl.v1.LogChunk.Stream }).stream, "stdout");
  // A spec that is not an object travels wrapped.
  t.deepEqual(serviceFromProto(wire(pb.Service, serviceToProto({ ...record, spec: [1] }) as vmctl.v1.Service)).spec, { value: [1] });
});

test("the enum tables name every value of their protobuf enum but UNSPECIFIED", (t) => {
  const named = (values: object) => Object.values(values).filter((n): n is number => typeof n === "number" && n !== 0).sort();
  const encoded = (codec: { encode(name: never): number }, names: readonly string[]) => names.map((n) => codec.encode(n as never)).sort();
  t.deepEqual(encoded(servicePhase, ["created", "waiting", "starting", "running", "paused", "stopping", "exited"]), named(pb.Phase));
  t.deepEqual(encoded(eventKind, ["snapshot", "created", "updated", "deleted"]), named(pb.ServiceEvent.Kind));
  t.deepEqual(encoded(logStream, ["stdout", "stderr", "console"]), named(pb.LogChunk.Stream));
  t.is(servicePhase.encode("bogus" as never), pb.Phase.PHASE_UNSPECIFIED);
});
