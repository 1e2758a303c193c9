import test from "ava";
import { google } from "./gen/protos.js";
import { jsonFromStruct, structFromJson } from "./struct.js";

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
