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
  for (const [key, v] of Object.entries(value)) {
    // defineProperty: a "__proto__" key (JSON.parse makes it an own key) stays a key.
    if (v !== undefined) Object.defineProperty(fields, key, { value: valueFromJson(v), enumerable: true, writable: true, configurable: true });
  }
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

/**
 * Deepest nesting of objects and lists jsonFromStruct converts. Decoded requests cannot
 * come near it (protobuf's recursion limit of 100 messages allows about 50 levels); it
 * keeps a hand-built Struct from overflowing the stack.
 */
export const MAX_JSON_DEPTH = 100;

/** A Struct nested deeper than MAX_JSON_DEPTH; `path` is where, in JSON terms (".a.b[3]"). */
export class StructDepthError extends RangeError {
  override readonly name = "StructDepthError";
  constructor(readonly path: string) {
    super(`${path || "."}: nested more than ${MAX_JSON_DEPTH} levels deep`);
  }
}

/** A Struct as a JSON object; an absent Struct is undefined. Throws StructDepthError past MAX_JSON_DEPTH. */
export function jsonFromStruct(struct: IStruct | null | undefined): { [key: string]: JsonValue } | undefined {
  if (struct === null || struct === undefined) return undefined;
  return objectFromStruct(struct, "", 1);
}

export function jsonFromValue(value: IValue): JsonValue {
  return convertValue(value, "", 1);
}

function objectFromStruct(struct: IStruct, path: string, depth: number): { [key: string]: JsonValue } {
  if (depth > MAX_JSON_DEPTH) throw new StructDepthError(path);
  const out: { [key: string]: JsonValue } = {};
  for (const [key, v] of Object.entries(struct.fields ?? {})) {
    // An own property even for "__proto__" (plain assignment would set the prototype and
    // drop the key), so whoever validates the JSON sees every key the client sent.
    Object.defineProperty(out, key, { value: convertValue(v, `${path}.${key}`, depth), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function convertValue(value: IValue, path: string, depth: number): JsonValue {
  // Decoded messages carry the oneof's name in `kind`; plain objects have one field set.
  const kind = (value as { kind?: string }).kind ?? Object.keys(value).find((k) => (value as Record<string, unknown>)[k] != null);
  switch (kind) {
    case "numberValue":
      return Number(value.numberValue);
    case "stringValue":
      return String(value.stringValue);
    case "boolValue":
      return Boolean(value.boolValue);
    case "listValue": {
      if (depth + 1 > MAX_JSON_DEPTH) throw new StructDepthError(path);
      return (value.listValue?.values ?? []).map((v, i) => convertValue(v, `${path}[${i}]`, depth + 1));
    }
    case "structValue":
      return value.structValue ? objectFromStruct(value.structValue, path, depth + 1) : {};
    default:
      return null;
  }
}
