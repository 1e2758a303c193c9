// google.protobuf.Struct ↔ JSON, for every side of the API: specs travel as Struct,
// the engine and its callers speak JSON.
import type { google } from "./gen/protos.js";

/** JSON values (structurally the same as @vmctl/core's JsonValue). */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

type IValue = google.protobuf.IValue;
type IStruct = google.protobuf.IStruct;

/** A JSON object as a Struct (numbers are doubles, as Struct defines them). */
export function structFromJson(value: { readonly [key: string]: JsonValue }): IStruct {
  const fields: Record<string, IValue> = {};
  for (const [key, v] of Object.entries(value)) if (v !== undefined) fields[key] = valueFromJson(v);
  return { fields };
}

export function valueFromJson(value: JsonValue): IValue {
  if (value === null) return { nullValue: 0 };
  if (typeof value === "number") return { numberValue: value };
  if (typeof value === "string") return { stringValue: value };
  if (typeof value === "boolean") return { boolValue: value };
  if (Array.isArray(value)) return { listValue: { values: value.map(valueFromJson) } };
  return { structValue: structFromJson(value) };
}

/** A Struct as a JSON object; an absent Struct is undefined. */
export function jsonFromStruct(struct: IStruct | null | undefined): { [key: string]: JsonValue } | undefined {
  if (struct === null || struct === undefined) return undefined;
  const out: { [key: string]: JsonValue } = {};
  for (const [key, v] of Object.entries(struct.fields ?? {})) out[key] = jsonFromValue(v);
  return out;
}

export function jsonFromValue(value: IValue): JsonValue {
  // Decoded messages carry the oneof's name in `kind`; plain objects have one field set.
  const kind = (value as { kind?: string }).kind ?? Object.keys(value).find((k) => (value as Record<string, unknown>)[k] != null);
  switch (kind) {
    case "numberValue":
      return Number(value.numberValue);
    case "stringValue":
      return String(value.stringValue);
    case "boolValue":
      return Boolean(value.boolValue);
    case "listValue":
      return (value.listValue?.values ?? []).map(jsonFromValue);
    case "structValue":
      return jsonFromStruct(value.structValue) ?? {};
    default:
      return null;
  }
}
