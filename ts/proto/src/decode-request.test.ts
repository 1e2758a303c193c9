import test from "ava";
import fc from "fast-check";
import { google, vmctl } from "./gen/protos.js";
import { OrchestratorService } from "./gen/services.js";
import { decodeRequest, MalformedMessage } from "./decode-request.js";
import { deepStructValue, lengthDelimited, varint } from "../../../tests/orchestrator/helpers/wire.js";

const pb = vmctl.v1;

// Hand-made wire bytes (from the shared helper), so tests can send what no encoder would write.
const field = lengthDelimited;
const utf8 = (s: string): number[] => [...Buffer.from(s, "utf8")];
const BAD_UTF8 = [0xc3, 0x28];

function malformed(result: unknown): MalformedMessage {
  if (!(result instanceof MalformedMessage)) throw new Error(`expected a MalformedMessage, got ${JSON.stringify(result)}`);
  return result;
}

test("a good request decodes as before", (t) => {
  const bytes = pb.CreateServiceRequest.encode({ name: "web", target: "oci", labels: { tier: "é" }, dependsOn: ["db"] }).finish();
  const decoded = decodeRequest(pb.CreateServiceRequest, "vmctl.v1.CreateServiceRequest", bytes);
  t.true(decoded instanceof pb.CreateServiceRequest);
  t.deepEqual((decoded as vmctl.v1.CreateServiceRequest).labels, { tier: "é" });
});

test("invalid UTF-8 in a string is refused, naming the field", (t) => {
  const id = malformed(decodeRequest(pb.ServiceRef, "vmctl.v1.ServiceRef", Uint8Array.from(field(1, BAD_UTF8))));
  t.is(id.field, "id");
  t.is(id.message, "id: is not valid UTF-8 (malformed vmctl.v1.ServiceRef)");

  const deps = [...field(5, utf8("db")), ...field(5, BAD_UTF8)];
  t.is(malformed(decodeRequest(pb.CreateServiceRequest, "vmctl.v1.CreateServiceRequest", Uint8Array.from(deps))).field, "dependsOn[1]");

  const labelValue = field(4, [...field(1, utf8("tier")), ...field(2, BAD_UTF8)]);
  t.is(malformed(decodeRequest(pb.CreateServiceRequest, "vmctl.v1.CreateServiceRequest", Uint8Array.from(labelValue))).field, "labels.tier");
  const labelKey = field(4, [...field(1, BAD_UTF8), ...field(2, utf8("x"))]);
  const key = malformed(decodeRequest(pb.CreateServiceRequest, "vmctl.v1.CreateServiceRequest", Uint8Array.from(labelKey)));
  t.is(key.field, "labels");
  t.regex(key.problem, /key .*UTF-8/);

  const host = field(6, field(1, field(1, BAD_UTF8))); // readiness.tcp.host
  t.is(malformed(decodeRequest(pb.CreateServiceRequest, "vmctl.v1.CreateServiceRequest", Uint8Array.from(host))).field, "readiness.tcp.host");
});

test("a lone surrogate, which protobufjs encodes as CESU-8, is refused like any invalid UTF-8", (t) => {
  const bytes = pb.ServiceRef.encode({ id: "a\uD800b" }).finish();
  t.is(malformed(decodeRequest(pb.ServiceRef, "vmctl.v1.ServiceRef", bytes)).field, "id");
});

test("inside a spec the path reads as JSON: spec.a.b[1]", (t) => {
  const list = field(6, [...field(1, field(3, utf8("ok"))), ...field(1, field(3, BAD_UTF8))]); // ListValue{values: ["ok", bad]}
  const b = field(1, [...field(1, utf8("b")), ...field(2, list)]);
  const a = field(1, [...field(1, utf8("a")), ...field(2, field(5, b))]);
  const found = malformed(decodeRequest(pb.CreateServiceRequest, "vmctl.v1.CreateServiceRequest", Uint8Array.from(field(3, a))));
  t.is(found.field, "spec.a.b[1]");
});

test("truncated messages and garbage name what they can", (t) => {
  const whole = pb.CreateServiceRequest.encode({ name: "web", target: "oci" }).finish();
  const cut = malformed(decodeRequest(pb.CreateServiceRequest, "vmctl.v1.CreateServiceRequest", whole.subarray(0, whole.length - 1)));
  t.is(cut.field, "target");
  t.regex(cut.problem, /truncated/);

  // field 2 (ServiceRef has none) with wire type 7 (there is none)
  const garbage = malformed(decodeRequest(pb.ServiceRef, "vmctl.v1.ServiceRef", Uint8Array.from([0x17, 0xff])));
  t.is(garbage.field, undefined);
  t.regex(garbage.message, /^malformed vmctl\.v1\.ServiceRef: invalid wire type 7/);
  // a known field number with an impossible wire type is named
  t.is(malformed(decodeRequest(pb.ServiceRef, "vmctl.v1.ServiceRef", Uint8Array.from([0x0f, 0xff]))).field, "id");
  t.regex(malformed(decodeRequest(pb.ServiceRef, "vmctl.v1.ServiceRef", Uint8Array.from([0x00]))).problem, /field number 0/);
});

test("a 10,000-deep Struct is refused at protobuf's recursion limit, naming the spec path, without overflowing the stack", (t) => {
  const bytes = Uint8Array.from(field(3, field(1, [...field(1, utf8("a")), ...field(2, deepStructValue(10_000))])));
  const found = malformed(decodeRequest(pb.CreateServiceRequest, "vmctl.v1.CreateServiceRequest", bytes));
  t.regex(found.field ?? "", /^spec(\.a)+$/);
  t.regex(found.problem, /nested more than 100 messages deep/);
  // 40 levels is legal protobuf: it decodes, and the engine's own limit has its say.
  const ok = Uint8Array.from(field(3, field(1, [...field(1, utf8("a")), ...field(2, deepStructValue(40))])));
  t.true(decodeRequest(pb.CreateServiceRequest, "vmctl.v1.CreateServiceRequest", ok) instanceof pb.CreateServiceRequest);
});

test("unknown fields and mismatched wire types are skipped, as protobuf parsers do", (t) => {
  const bytes = Uint8Array.from([...varint(99 * 8 + 0), 5, ...varint(1 * 8 + 0), 7, ...field(1, utf8("x"))]);
  const decoded = decodeRequest(pb.ServiceRef, "vmctl.v1.ServiceRef", bytes);
  t.true(decoded instanceof pb.ServiceRef);
  t.is((decoded as vmctl.v1.ServiceRef).id, "x");
});

test("the generated service definitions decode through it and never throw", (t) => {
  t.true(OrchestratorService.getService.requestDeserialize(Buffer.from([0x0a, 0x05])) instanceof MalformedMessage);
});

test("property: any bytes either decode or come back as a MalformedMessage; the walk and protobufjs agree on where", (t) => {
  const types: readonly (readonly [{ decode(bytes: Uint8Array): unknown }, string])[] = [
    [pb.CreateServiceRequest, "vmctl.v1.CreateServiceRequest"],
    [pb.ListServicesRequest, "vmctl.v1.ListServicesRequest"],
    [pb.StopServiceRequest, "vmctl.v1.StopServiceRequest"],
    [google.protobuf.Struct, "google.protobuf.Struct"],
  ];
  fc.assert(
    fc.property(fc.constantFrom(...types), fc.uint8Array({ maxLength: 64 }), ([type, name], bytes) => {
      let thrown = false;
      try {
        type.decode(bytes);
      } catch {
        thrown = true;
      }
      const result = decodeRequest(type, name, bytes);
      // protobufjs's verdict stands; the walk only says where.
      return thrown === result instanceof MalformedMessage;
    }),
    { numRuns: 5000 },
  );
  // Valid messages cut short: the walk finds the problem (and names a field) whenever protobufjs refuses.
  fc.assert(
    fc.property(
      fc.record({ name: fc.string(), target: fc.string(), dependsOn: fc.array(fc.string()), labels: fc.dictionary(fc.string(), fc.string()) }),
      fc.nat(),
      (request, cut) => {
        const whole = pb.CreateServiceRequest.encode(request).finish();
        const bytes = whole.subarray(0, cut % (whole.length + 1));
        const result = decodeRequest(pb.CreateServiceRequest, "vmctl.v1.CreateServiceRequest", bytes);
        return !(result instanceof MalformedMessage) || !/index out of range/.test(result.problem);
      },
    ),
    { numRuns: 2000 },
  );
  t.pass();
});
