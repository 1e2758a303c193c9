import test from "ava";
import { google } from "./gen/protos.js";
import { jsonFromStruct, MAX_JSON_DEPTH, StructDepthError, structFromJson, type JsonValue } from "./struct.js";

test("JSON survives Struct both as plain objects and through encode/decode", (t) => {
  const json = { rootfs: "/r", args: ["sh", "-c", "x"], env: { A: "1" }, n: 1.5, ok: true, none: null, nested: { list: [1, { deep: false }] } };
  t.deepEqual(jsonFromStruct(structFromJson(json)), json);
  const decoded = google.protobuf.Struct.decode(google.protobuf.Struct.encode(structFromJson(json)).finish());
  t.deepEqual(jsonFromStruct(decoded), json);
  t.is(jsonFromStruct(null), undefined);
  // defaults on decoded messages are not mistaken for values: 0, "" and false stay what they are
  const zeros = { zero: 0, empty: "", no: false };
  t.deepEqual(jsonFromStruct(google.protobuf.Struct.decode(google.protobuf.Struct.encode(structFromJson(zeros)).finish())), zeros);
});

test("a __proto__ key survives both directions as a key (not a prototype)", (t) => {
  const json = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}') as { [key: string]: JsonValue };
  const decoded = google.protobuf.Struct.decode(google.protobuf.Struct.encode(structFromJson(json)).finish());
  const back = jsonFromStruct(decoded) ?? {};
  t.deepEqual(Object.keys(back).sort(), ["__proto__", "a"]);
  t.is(Object.getPrototypeOf(back), Object.prototype);
  t.deepEqual(Object.getOwnPropertyDescriptor(back, "__proto__")?.value, { polluted: true });
});

test("a hand-built Struct 10,000 levels deep is refused with StructDepthError naming the path, not a stack overflow", (t) => {
  let value: google.protobuf.IValue = { nullValue: 0 };
  for (let i = 0; i < 10_000; i++) value = i % 2 ? { structValue: { fields: { k: value } } } : { listValue: { values: [value] } };
  const err = t.throws(() => jsonFromStruct({ fields: { top: value } }), { instanceOf: StructDepthError });
  t.true(err.path.startsWith(".top"));
  t.is(err.path.split(/[.[]/).length - 1, MAX_JSON_DEPTH);
});
